using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

/// <summary>
/// The published daemon for the out-of-process benchmarks (bench/replay, bench/s2): started on a free
/// loopback port with the given data directory and environment, stopped with SIGTERM on dispose.
/// </summary>
internal sealed partial class Daemon : IAsyncDisposable
{
    private readonly Process _process;
    private readonly bool _ownsDataDir;
    private readonly StringBuilder _stderr = new();

    private Daemon(Process process, string dataDir, bool ownsDataDir)
    {
        _process = process;
        DataDir = dataDir;
        _ownsDataDir = ownsDataDir;
    }

    public int Port { get; private set; }
    public string DataDir { get; }

    /// <summary>
    /// The executable to run: <paramref name="binary"/> when given, else the repository's artifacts/aotevents.
    /// Null (with the reason on stderr) when it is not there.
    /// </summary>
    public static string? LocateBinary(string? binary)
    {
        binary ??= Path.Combine(RepoRoot(), "artifacts", "aotevents");
        if (File.Exists(binary)) return binary;
        Console.Error.WriteLine($"{binary} not found: run `make publish` first");
        return null;
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AotEvents.sln"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }

    [GeneratedRegex("listening on http://127\\.0\\.0\\.1:(\\d+)")]
    private static partial Regex ListenLine();

    /// <summary>
    /// Starts the daemon on <paramref name="dataDir"/> (kept after dispose), or on a fresh temporary
    /// directory (deleted on dispose) when it is null.
    /// </summary>
    public static async Task<Daemon> StartAsync(string binary, string? dataDir = null,
        IReadOnlyDictionary<string, string>? env = null)
    {
        bool owns = dataDir is null;
        dataDir ??= Path.Combine(Path.GetTempPath(), "aotevents-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dataDir);
        var psi = new ProcessStartInfo(binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.Environment["PORT"] = "0";
        psi.Environment["HOST"] = "127.0.0.1";
        psi.Environment["EVENTS_DATA_DIR"] = dataDir;
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var process = new Process { StartInfo = psi };
        var daemon = new Daemon(process, dataDir, owns);
        var port = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (daemon._stderr) daemon._stderr.AppendLine(e.Data);
            Match m = ListenLine().Match(e.Data);
            if (m.Success) port.TrySetResult(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        };
        process.OutputDataReceived += (_, _) => { };
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        daemon.Port = await port.Task.WaitAsync(TimeSpan.FromSeconds(20));
        return daemon;
    }

    public HttpClient Client() => new() { BaseAddress = new Uri($"http://127.0.0.1:{Port}"), Timeout = TimeSpan.FromMinutes(2) };

    /// <summary>VmRSS in bytes.</summary>
    public long Rss() => Memory().Rss;

    /// <summary>VmRSS and VmHWM in bytes.</summary>
    public (long Rss, long Hwm) Memory()
    {
        long rss = 0, hwm = 0;
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kb(line);
            else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = Kb(line);
        }
        return (rss, hwm);

        static long Kb(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }
        _process.Dispose();
        if (!_ownsDataDir) return;
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
