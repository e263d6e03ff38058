using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace AotEvents.Blackbox.Tests;

/// <summary>
/// Starts the published native-AOT binary (<c>AOTEVENTS_BINARY</c>, default artifacts/aotevents) on
/// a free loopback port with its own data directory, and stops it. Everything goes through real
/// sockets and real files: this suite never references the product's assemblies.
/// </summary>
public sealed partial class DaemonProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly StringBuilder _stdout = new();
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<string, string> _env;
    private readonly string[] _args;
    private bool _ownsDataDir;

    private DaemonProcess(Process process, string dataDir, bool ownsDataDir, Dictionary<string, string> env, string[] args)
    {
        _process = process;
        DataDir = dataDir;
        _ownsDataDir = ownsDataDir;
        _env = env;
        _args = args;
    }

    public string DataDir { get; }
    public int Port { get; private set; }
    public Uri BaseUri => new($"http://127.0.0.1:{Port}");
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>Everything the daemon logged on stderr so far (JSON lines).</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr) return _stderr.ToString();
        }
    }

    public static string BinaryPath
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("AOTEVENTS_BINARY");
            if (!string.IsNullOrEmpty(env)) return env;
            return Path.Combine(RepoRoot, "artifacts", "aotevents");
        }
    }

    /// <summary>The repository root (the directory holding AotEvents.sln).</summary>
    public static string RepoRoot
    {
        get
        {
            string? dir = AppContext.BaseDirectory;
            while (dir is not null && !File.Exists(Path.Combine(dir, "AotEvents.sln"))) dir = Path.GetDirectoryName(dir);
            return dir ?? throw new DirectoryNotFoundException("AotEvents.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string NewDataDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "aotevents-bb-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Everything the daemon wrote on stdout so far.</summary>
    public string Stdout
    {
        get
        {
            lock (_stdout) return _stdout.ToString();
        }
    }

    /// <summary>
    /// Starts the daemon and waits until it listens. <paramref name="env"/> adds or overrides variables
    /// (PORT=0 unless given). A data directory passed in stays after dispose; one created here is deleted.
    /// </summary>
    public static async Task<DaemonProcess> StartAsync(IDictionary<string, string>? env = null, string? dataDir = null,
        IEnumerable<string>? args = null)
    {
        bool owns = dataDir is null;
        dataDir ??= NewDataDir();
        var daemon = Launch(env, dataDir, args, owns);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            daemon.Port = await daemon._port.Task.WaitAsync(timeout.Token);
        }
        catch
        {
            await daemon.DisposeAsync();
            throw;
        }
        return daemon;
    }

    /// <summary>SIGTERM (asserting exit 0), then the same binary, environment, data directory and port again.</summary>
    public async Task<DaemonProcess> RestartAsync()
    {
        int code = await StopAsync();
        if (code != 0) throw new InvalidOperationException($"the daemon exited {code} on SIGTERM: {Stderr}");
        var env = new Dictionary<string, string>(_env) { ["PORT"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        bool owns = _ownsDataDir;
        _ownsDataDir = false;
        DaemonProcess next = await StartWithRetryAsync(env, DataDir, _args);
        next._ownsDataDir = owns;
        return next;
    }

    private static async Task<DaemonProcess> StartWithRetryAsync(Dictionary<string, string> env, string dataDir, string[] args)
    {
        // The port was just released; give the kernel a moment if it is not bindable yet.
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return await StartAsync(env, dataDir, args);
            }
            catch (InvalidOperationException) when (attempt < 10)
            {
                await Task.Delay(200);
            }
        }
    }

    /// <summary>Runs the binary to its exit (for --help and configuration errors): exit code, stdout, stderr.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(
        IDictionary<string, string>? env = null, IEnumerable<string>? args = null, TimeSpan? timeout = null)
    {
        string dataDir = NewDataDir();
        var daemon = Launch(env, dataDir, args, ownsDataDir: true);
        try
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
            await daemon._process.WaitForExitAsync(cts.Token);
            daemon._process.WaitForExit(); // drains the redirected streams
            return (daemon._process.ExitCode, daemon.Stdout, daemon.Stderr);
        }
        finally
        {
            await daemon.DisposeAsync();
        }
    }

    private static DaemonProcess Launch(IDictionary<string, string>? env, string dataDir, IEnumerable<string>? args, bool ownsDataDir)
    {
        string binary = BinaryPath;
        if (!File.Exists(binary))
            throw new FileNotFoundException($"published binary not found at {binary}; run `make publish` first");
        var psi = new ProcessStartInfo(binary)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        string[] argList = args?.ToArray() ?? [];
        foreach (string a in argList) psi.ArgumentList.Add(a);
        psi.Environment["PORT"] = "0";
        psi.Environment["HOST"] = "127.0.0.1";
        psi.Environment["EVENTS_DATA_DIR"] = dataDir;
        var envCopy = new Dictionary<string, string>(env ?? new Dictionary<string, string>());
        foreach (var (k, v) in envCopy) psi.Environment[k] = v;

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var daemon = new DaemonProcess(process, dataDir, ownsDataDir, envCopy, argList);
        process.ErrorDataReceived += (_, e) => daemon.OnStderr(e.Data);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (daemon._stdout) daemon._stdout.AppendLine(e.Data);
        };
        process.Exited += (_, _) => daemon._port.TrySetException(new InvalidOperationException(
            "the daemon exited before listening: " + daemon.Stderr));
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return daemon;
    }

    [GeneratedRegex("listening on http://127\\.0\\.0\\.1:(\\d+)")]
    private static partial Regex ListenLine();

    private void OnStderr(string? line)
    {
        if (line is null) return;
        lock (_stderr) _stderr.AppendLine(line);
        Match m = ListenLine().Match(line);
        if (m.Success) _port.TrySetResult(int.Parse(m.Groups[1].Value));
    }

    /// <summary>SIGTERM and wait for exit; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            Signal("TERM");
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
            await _process.WaitForExitAsync(cts.Token);
        }
        return _process.ExitCode;
    }

    /// <summary>kill -9: no shutdown at all, like a crash or an OOM kill.</summary>
    public async Task KillAsync()
    {
        if (_process.HasExited) return;
        Signal("KILL");
        await _process.WaitForExitAsync();
    }

    /// <summary>Sends a signal (TERM, INT, KILL…) without waiting.</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString()]);
        kill.WaitForExit();
    }

    /// <summary>Resident set size in bytes (VmRSS).</summary>
    public long RssBytes()
    {
        foreach (string line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return 0;
    }

    public HttpClient CreateClient() => new() { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>Opens a raw TCP connection to the daemon (for byte-exact tests).</summary>
    public async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port));
        return socket;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                Signal("KILL");
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
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
