using System.Globalization;
using System.Text;

namespace AotEvents.Config;

/// <summary>
/// The daemon's configuration (SPEC §8): environment variables, overridden by the matching flags
/// (<c>EVENTS_DATA_DIR</c> ↔ <c>--data-dir</c>, <c>S2_BASIN</c> ↔ <c>--s2-basin</c>, <c>PORT</c> ↔ <c>--port</c>).
/// A bad value stops the start with a message naming the setting.
/// </summary>
public sealed class DaemonConfig
{
    public string Host { get; private set; } = "127.0.0.1";
    public int Port { get; private set; } = 10001;
    public string DataDir { get; private set; } = "./data";
    public int RingCapacity { get; private set; } = 8192;
    public long RingMaxBytes { get; private set; } = 16 * 1024 * 1024;
    public long MaxBodyBytes { get; private set; } = 16 * 1024 * 1024;
    public TimeSpan FsyncInterval { get; private set; } = TimeSpan.FromMilliseconds(200);
    public long SegmentBytes { get; private set; } = 64L * 1024 * 1024;
    public long MaxDiskBytes { get; private set; } = 1024L * 1024 * 1024;
    public TimeSpan Keepalive { get; private set; } = TimeSpan.FromSeconds(15);
    public TimeSpan RequestTimeout { get; private set; } = TimeSpan.FromSeconds(30);
    public TimeSpan IdleTimeout { get; private set; } = TimeSpan.FromSeconds(120);
    public int MaxConnections { get; private set; } = 10000;
    public string? ApiToken { get; private set; }
    public string[] CorsOrigins { get; private set; } = [];
    public string? S2Basin { get; private set; }
    public string? S2AccessToken { get; private set; }
    public string? S2Stream { get; private set; }
    public string? S2Endpoint { get; private set; }
    public TimeSpan S2BatcherLinger { get; private set; } = TimeSpan.FromMilliseconds(100);
    public int S2BatcherMaxRecords { get; private set; } = 50;
    public long S2BatcherMaxBytes { get; private set; } = 1024 * 1024;
    public TimeSpan S2ShutdownTimeout { get; private set; } = TimeSpan.FromSeconds(10);

    public bool S2Enabled => !string.IsNullOrEmpty(S2AccessToken) && !string.IsNullOrEmpty(S2Basin);

    private delegate string? Apply(DaemonConfig config, string value);

    private sealed record Setting(string Env, string Default, string Meaning, Apply Parse)
    {
        public string Flag => "--" + (Env.StartsWith("EVENTS_", StringComparison.Ordinal) ? Env[7..] : Env)
            .ToLowerInvariant().Replace('_', '-');
    }

    private static readonly Setting[] Settings =
    [
        new("HOST", "127.0.0.1", "address the HTTP server listens on", (c, v) => { c.Host = v; return null; }),
        new("PORT", "10001", "port (0: any free port, printed at start)", (c, v) => Int(v, 0, 65535, out int p) ?? Set(() => c.Port = p)),
        new("EVENTS_DATA_DIR", "./data", "JSONL files, session and shipping position", (c, v) => v.Length == 0 ? "must not be empty" : Set(() => c.DataDir = v)),
        new("EVENTS_RING_CAPACITY", "8192", "envelopes held in memory for live fan-out", (c, v) => Int(v, 1, 1 << 24, out int n) ?? Set(() => c.RingCapacity = n)),
        new("EVENTS_RING_MAX_BYTES", "16777216", "byte budget of the ring", (c, v) => Size(v, 1024, out long n) ?? Set(() => c.RingMaxBytes = n)),
        new("EVENTS_MAX_BODY_BYTES", "16777216", "largest request body (413 above)", (c, v) => Size(v, 1024, out long n) ?? Set(() => c.MaxBodyBytes = n)),
        new("EVENTS_FSYNC_INTERVAL", "200ms", "longest time written JSONL bytes wait for fsync", (c, v) => Duration(v, out TimeSpan d) ?? Set(() => c.FsyncInterval = d)),
        new("EVENTS_SEGMENT_BYTES", "67108864", "JSONL file size at which it rotates", (c, v) => Size(v, 4096, out long n) ?? Set(() => c.SegmentBytes = n)),
        new("EVENTS_MAX_DISK_BYTES", "1073741824", "total JSONL size kept; oldest rotated files deleted first", (c, v) => Size(v, 4096, out long n) ?? Set(() => c.MaxDiskBytes = n)),
        new("EVENTS_KEEPALIVE", "15s", "SSE keepalive interval", (c, v) => Duration(v, out TimeSpan d) ?? Set(() => c.Keepalive = d)),
        new("EVENTS_REQUEST_TIMEOUT", "30s", "a request must arrive whole within this time of its first byte", (c, v) => Duration(v, out TimeSpan d) ?? Set(() => c.RequestTimeout = d)),
        new("EVENTS_IDLE_TIMEOUT", "120s", "idle keep-alive connections are closed after this", (c, v) => Duration(v, out TimeSpan d) ?? Set(() => c.IdleTimeout = d)),
        new("EVENTS_MAX_CONNECTIONS", "10000", "connections beyond this are refused with 503", (c, v) => Int(v, 1, 1_000_000, out int n) ?? Set(() => c.MaxConnections = n)),
        new("EVENTS_API_TOKEN", "unset", "bearer token required on every endpoint but /healthz", (c, v) => Set(() => c.ApiToken = v.Length == 0 ? null : v)),
        new("EVENTS_CORS_ORIGINS", "unset", "comma-separated origins (or *) allowed to call from a web page", (c, v) => Set(() => c.CorsOrigins = v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))),
        new("S2_BASIN", "unset", "S2 basin (shipping is on when basin and token are set)", (c, v) => Set(() => c.S2Basin = v.Length == 0 ? null : v)),
        new("S2_ACCESS_TOKEN", "unset", "S2 access token", (c, v) => Set(() => c.S2AccessToken = v.Length == 0 ? null : v)),
        new("S2_STREAM", "unset", "one stream for every event (unset: one stream per capture session)", (c, v) => Set(() => c.S2Stream = v.Length == 0 ? null : v)),
        new("S2_ENDPOINT", "https://{basin}.b.s2.dev", "S2 endpoint (e.g. http://127.0.0.1:8080 for s2-lite; then the s2-basin header is sent)", (c, v) => v.Length == 0 || Uri.TryCreate(v.Replace("{basin}", "basin", StringComparison.Ordinal), UriKind.Absolute, out _) ? Set(() => c.S2Endpoint = v.Length == 0 ? null : v) : "must be an absolute http(s) URL"),
        new("S2_BATCHER_LINGER", "100ms", "longest time a record waits to be batched", (c, v) => Duration(v, out TimeSpan d) ?? Set(() => c.S2BatcherLinger = d)),
        new("S2_BATCHER_MAX_RECORDS", "50", "records per append (1..1000)", (c, v) => Int(v, 1, 1000, out int n) ?? Set(() => c.S2BatcherMaxRecords = n)),
        new("S2_BATCHER_MAX_BYTES", "1048576", "metered bytes per append (up to 1 MiB)", (c, v) => Size(v, 1024, out long n) ?? (n > 1024 * 1024 ? "must be at most 1048576 (1 MiB, the S2 append limit)" : Set(() => c.S2BatcherMaxBytes = n))),
        new("S2_SHUTDOWN_TIMEOUT", "10s", "how long shutdown waits for S2 to take what is left", (c, v) => Duration(v, out TimeSpan d) ?? Set(() => c.S2ShutdownTimeout = d)),
    ];

    private static string? Set(Action set)
    {
        set();
        return null;
    }

    /// <summary>
    /// Builds the configuration. Returns null and an error naming the setting when a value is bad;
    /// <paramref name="help"/> is set when <c>--help</c> was asked for.
    /// </summary>
    public static DaemonConfig? Load(IReadOnlyList<string> args, Func<string, string?> getEnv, out string? error, out bool help)
    {
        var config = new DaemonConfig();
        help = false;
        error = null;
        foreach (Setting s in Settings)
        {
            string? value = getEnv(s.Env);
            if (value is null) continue;
            if (s.Parse(config, value.Trim()) is { } problem)
            {
                error = $"{s.Env}={value}: {problem}";
                return null;
            }
        }
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg is "--help" or "-h")
            {
                help = true;
                return config;
            }
            string name = arg;
            string? value = null;
            int eq = arg.IndexOf('=');
            if (eq > 0)
            {
                name = arg[..eq];
                value = arg[(eq + 1)..];
            }
            Setting? setting = Array.Find(Settings, s => s.Flag == name);
            if (setting is null)
            {
                error = $"unknown argument: {arg} (see --help)";
                return null;
            }
            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    error = $"{name}: a value is required";
                    return null;
                }
                value = args[++i];
            }
            if (setting.Parse(config, value.Trim()) is { } problem)
            {
                error = $"{name} {value}: {problem}";
                return null;
            }
        }
        return config;
    }

    public static string HelpText()
    {
        var sb = new StringBuilder();
        sb.AppendLine("aotevents — the event daemon of the browser VM: publish JSON events over HTTP, stream them over SSE,");
        sb.AppendLine("keep them in JSONL files and ship them to S2.");
        sb.AppendLine();
        sb.AppendLine("Usage: aotevents [--flag value | --flag=value]...   (flags override the environment)");
        sb.AppendLine();
        foreach (Setting s in Settings)
            sb.Append("  ").Append(s.Flag.PadRight(26)).Append(s.Env.PadRight(24)).Append(("default " + s.Default).PadRight(36)).AppendLine(s.Meaning);
        sb.AppendLine("  --help, -h                 print this help");
        return sb.ToString();
    }

    /// <summary>The effective configuration for the start-up log line, tokens redacted.</summary>
    public IEnumerable<KeyValuePair<string, string>> Describe()
    {
        static string Ms(TimeSpan t) => ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms";
        static string N(long n) => n.ToString(CultureInfo.InvariantCulture);
        yield return new("host", Host);
        yield return new("port", N(Port));
        yield return new("data_dir", Path.GetFullPath(DataDir));
        yield return new("ring_capacity", N(RingCapacity));
        yield return new("ring_max_bytes", N(RingMaxBytes));
        yield return new("max_body_bytes", N(MaxBodyBytes));
        yield return new("fsync_interval", Ms(FsyncInterval));
        yield return new("segment_bytes", N(SegmentBytes));
        yield return new("max_disk_bytes", N(MaxDiskBytes));
        yield return new("keepalive", Ms(Keepalive));
        yield return new("request_timeout", Ms(RequestTimeout));
        yield return new("idle_timeout", Ms(IdleTimeout));
        yield return new("max_connections", N(MaxConnections));
        yield return new("api_token", ApiToken is null ? "unset" : "[redacted]");
        yield return new("cors_origins", CorsOrigins.Length == 0 ? "unset" : string.Join(',', CorsOrigins));
        yield return new("s2", S2Enabled ? "enabled" : "disabled");
        yield return new("s2_basin", S2Basin ?? "unset");
        yield return new("s2_access_token", S2AccessToken is null ? "unset" : "[redacted]");
        yield return new("s2_stream", S2Stream ?? "per-session");
        yield return new("s2_endpoint", S2Endpoint ?? "https://{basin}.b.s2.dev");
        yield return new("s2_batcher_linger", Ms(S2BatcherLinger));
        yield return new("s2_batcher_max_records", N(S2BatcherMaxRecords));
        yield return new("s2_batcher_max_bytes", N(S2BatcherMaxBytes));
        yield return new("s2_shutdown_timeout", Ms(S2ShutdownTimeout));
    }

    private static string? Int(string v, int min, int max, out int n)
    {
        if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out n)) return "must be a whole number";
        if (n < min || n > max) return $"must be between {min} and {max}";
        return null;
    }

    /// <summary>Bytes: a whole number, optionally with KiB/MiB/GiB (or K/M/G, KB/MB/GB as binary) suffix.</summary>
    public static string? Size(string v, long min, out long bytes)
    {
        bytes = 0;
        string s = v.Trim();
        long unit = 1;
        string[] suffixes = ["KiB", "MiB", "GiB", "KB", "MB", "GB", "K", "M", "G"];
        foreach (string suffix in suffixes)
        {
            if (s.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                unit = char.ToUpperInvariant(suffix[0]) switch { 'K' => 1024L, 'M' => 1024L * 1024, _ => 1024L * 1024 * 1024 };
                s = s[..^suffix.Length].Trim();
                break;
            }
        }
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / unit)
            return "must be a size in bytes (e.g. 67108864 or 64MiB)";
        bytes = n * unit;
        return bytes < min ? $"must be at least {min} bytes" : null;
    }

    /// <summary>Durations: a number with ms, s or m (a bare number is milliseconds).</summary>
    public static string? Duration(string v, out TimeSpan duration)
    {
        duration = default;
        string s = v.Trim();
        double scaleMs = 1;
        if (s.EndsWith("ms", StringComparison.OrdinalIgnoreCase)) s = s[..^2];
        else if (s.EndsWith('s')) { s = s[..^1]; scaleMs = 1000; }
        else if (s.EndsWith('m')) { s = s[..^1]; scaleMs = 60_000; }
        if (!double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double n) || n <= 0 || n * scaleMs > int.MaxValue)
            return "must be a positive duration such as 200ms, 15s or 2m";
        duration = TimeSpan.FromMilliseconds(n * scaleMs);
        return null;
    }
}
