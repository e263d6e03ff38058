using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using S2StandIn;

namespace AotEvents.Blackbox.Tests;

/// <summary>
/// The published daemon shipping to an in-memory S2 stand-in (S2_ENDPOINT = the stand-in), over
/// one data directory that outlives daemon restarts and kill -9.
/// </summary>
public sealed partial class S2Rig : IAsyncDisposable
{
    public const string Basin = "aotevents-blackbox";
    public const string Token = "t";
    private int _published;

    private S2Rig(S2StandIn.S2StandIn s2, string dataDir, Dictionary<string, string> env)
    {
        S2 = s2;
        DataDir = dataDir;
        Env = env;
    }

    public S2StandIn.S2StandIn S2 { get; }
    public string DataDir { get; }
    public Dictionary<string, string> Env { get; }
    public DaemonProcess Daemon { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;

    public static async Task<S2Rig> StartAsync(IDictionary<string, string>? env = null)
    {
        S2StandIn.S2StandIn s2 = await S2StandIn.S2StandIn.StartAsync(new S2StandInOptions { AccessToken = Token });
        var all = new Dictionary<string, string>
        {
            ["S2_BASIN"] = Basin,
            ["S2_ACCESS_TOKEN"] = Token,
            ["S2_ENDPOINT"] = s2.Endpoint,
        };
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) all[k] = v;
        var rig = new S2Rig(s2, DaemonProcess.NewDataDir(), all);
        await rig.StartDaemonAsync();
        return rig;
    }

    /// <summary>Starts the daemon (again) on the rig's data directory.</summary>
    public async Task StartDaemonAsync()
    {
        Daemon = await DaemonProcess.StartAsync(Env, DataDir);
        Http?.Dispose();
        Http = Daemon.CreateClient();
    }

    /// <summary>kill -9, then a new daemon on the same data directory.</summary>
    public async Task KillAndRestartAsync()
    {
        await Daemon.KillAsync();
        await Daemon.DisposeAsync();
        await StartDaemonAsync();
    }

    /// <summary>SIGTERM; asserts exit 0 and returns how long the exit took.</summary>
    public async Task<TimeSpan> StopDaemonAsync(TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        int code = await Daemon.StopAsync(timeout);
        Assert.True(code == 0, $"exit {code}: {Daemon.Stderr}");
        return clock.Elapsed;
    }

    public Task<string> StartSessionAsync() => Http.StartSessionAsync();

    public async Task StopSessionAsync()
    {
        ApiResult r = await Http.PostResultAsync("/events/stop");
        Assert.True(r.Status == 200, "stop → " + r);
    }

    /// <summary>Publishes <paramref name="count"/> events as NDJSON batches; returns the last seq.</summary>
    public async Task<long> PublishAsync(int count, int batch = 500, string query = "")
    {
        long last = 0;
        string[] categories = ["console", "network", "page", "interaction"];
        for (int done = 0; done < count;)
        {
            int n = Math.Min(batch, count - done);
            var sb = new StringBuilder(n * 100);
            for (int i = 0; i < n; i++)
            {
                int k = Interlocked.Increment(ref _published);
                string category = categories[k % categories.Length];
                sb.Append("{\"type\":\"").Append(category).Append(".test\",\"data\":{\"k\":")
                    .Append(k.ToString(CultureInfo.InvariantCulture)).Append(",\"text\":\"é \\\"q\\\" <tag>\"}}\n");
            }
            ApiResult r = await Http.PublishNdjsonAsync(sb.ToString(), query);
            Assert.True(r.Status == 200, "publish → " + r);
            last = r.Json().GetProperty("last_seq").GetInt64();
            done += n;
        }
        return last;
    }

    [GeneratedRegex("^\\{\"capture_session_id\":\"([^\"]*)\",\"seq\":(\\d+),")]
    private static partial Regex EnvelopeHead();

    /// <summary>Every line of the <c>&lt;data&gt;/*.log</c> files (without '\n'), merged by seq.</summary>
    public List<(long Seq, string Session, string Line)> FileLines()
    {
        var lines = new List<(long, string, string)>();
        foreach (string file in Directory.EnumerateFiles(DataDir, "*.log"))
        {
            string text = File.ReadAllText(file);
            Assert.True(text.Length == 0 || text[^1] == '\n', file + " ends with a partial line");
            foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Match m = EnvelopeHead().Match(line);
                Assert.True(m.Success, "not an envelope: " + line);
                lines.Add((long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), m.Groups[1].Value, line));
            }
        }
        lines.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return lines;
    }

    public int StoredCount => S2.Streams(Basin).Sum(s => S2.Records(Basin, s).Count);

    /// <summary>Waits until the stand-in holds <paramref name="count"/> records in all.</summary>
    public async Task WaitStoredAsync(int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (StoredCount < count)
        {
            if (clock.Elapsed > timeout)
                Assert.Fail($"S2 holds {StoredCount} records, {count} expected after {timeout}; daemon log:\n{Tail(Daemon.Stderr)}");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Every JSONL line is in S2 exactly once: in the stream named by its session, in seq order,
    /// body = the line. Nothing else is in S2.
    /// </summary>
    public void AssertExactlyOnce(int expectedEvents)
    {
        List<(long Seq, string Session, string Line)> files = FileLines();
        Assert.Equal(expectedEvents, files.Count);
        for (int i = 0; i < files.Count; i++) Assert.True(files[i].Seq == i + 1, $"line {i} has seq {files[i].Seq}");
        var sessions = files.Select(f => f.Session).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(sessions, S2.Streams(Basin));
        foreach (string session in sessions)
        {
            List<string> expected = files.Where(f => f.Session == session).Select(f => f.Line).ToList();
            IReadOnlyList<string> stored = S2.Bodies(Basin, session);
            if (expected.SequenceEqual(stored)) continue;
            int duplicates = stored.Count - stored.Distinct().Count();
            int missing = expected.Except(stored).Count();
            int firstDiff = Enumerable.Range(0, Math.Min(expected.Count, stored.Count)).FirstOrDefault(i => expected[i] != stored[i], -1);
            Assert.Fail($"stream {session}: {stored.Count} stored, {expected.Count} expected, {duplicates} duplicates, " +
                $"{missing} missing, first difference at {firstDiff}; daemon log:\n{Tail(Daemon.Stderr)}");
        }
    }

    public async Task<Dictionary<string, double>> MetricsAsync()
    {
        ApiResult r = await Http.GetResultAsync("/metrics");
        Assert.Equal(200, r.Status);
        return MetricsTests.Parse(r.Text);
    }

    /// <summary>Pages through <c>/telemetry/events</c> with <paramref name="limit"/>; returns the envelopes' raw JSON and the offsets followed.</summary>
    public static async Task<(List<string> Envelopes, List<long> Offsets)> PageArchiveAsync(HttpClient http, string query, int limit)
    {
        var envelopes = new List<string>();
        var offsets = new List<long>();
        string? offset = null;
        for (int page = 0; page < 100_000; page++)
        {
            string url = $"/telemetry/events?limit={limit}{query}" + (offset is null ? "" : "&offset=" + offset);
            ApiResult r = await http.GetResultAsync(url);
            Assert.True(r.Status == 200, url + " → " + r);
            using JsonDocument doc = JsonDocument.Parse(r.Body);
            Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
            foreach (JsonElement e in doc.RootElement.EnumerateArray()) envelopes.Add(e.GetRawText());
            string? hasMore = r.Header("X-Has-More");
            Assert.True(hasMore is "true" or "false", "X-Has-More: " + hasMore);
            if (hasMore == "false")
            {
                Assert.Null(r.Header("X-Next-Offset"));
                return (envelopes, offsets);
            }
            Assert.True(doc.RootElement.GetArrayLength() <= limit);
            offset = r.Header("X-Next-Offset");
            Assert.NotNull(offset);
            offsets.Add(long.Parse(offset, CultureInfo.InvariantCulture));
        }
        throw new InvalidOperationException("paging did not end");
    }

    internal static string Tail(string log) => log.Length <= 6000 ? log : "…" + log[^6000..];

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (Daemon is not null) await Daemon.DisposeAsync();
        await S2.DisposeAsync();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
