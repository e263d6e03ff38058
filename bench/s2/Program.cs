// S2 shipping benchmark: the published daemon (artifacts/aotevents) ships to the in-memory S2 stand-in
// over loopback. Prints one markdown table.
//
//   dotnet run -c Release --project bench/s2 -- [--events N] [--down-events N] [--binary PATH]
//
// 1. Throughput: N events published as fast as one client can (NDJSON batches of 1000), time from the
//    first publish until the stand-in's tail reaches N; with the defaults (linger 100ms, 50 records)
//    and with S2_BATCHER_MAX_RECORDS=1000.
// 2. Memory while S2 is down: the stand-in refuses every connection, N events are published, the
//    daemon's VmRSS/VmHWM (from /proc) are sampled; then S2 comes back and the catch-up is timed.
// The stand-in runs in this process, so it competes with the daemon for the same cores.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using S2StandIn;

const string Basin = BenchS2.Basin;
const string Token = BenchS2.Token;

int events = 100_000;
int downEvents = 100_000;
string? binary = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--events": events = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--down-events": downEvents = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--binary": binary = args[++i]; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}
binary = Daemon.LocateBinary(binary);
if (binary is null) return 1;

{
    // Warm-up (JIT of the in-process stand-in, page cache): not measured.
    await using S2StandIn.S2StandIn s2 = await S2StandIn.S2StandIn.StartAsync(new S2StandInOptions { AccessToken = Token });
    await using Daemon daemon = await S2Daemon.StartAsync(binary, s2, new Dictionary<string, string>());
    using HttpClient http = daemon.Client();
    string session = await StartSessionAsync(http);
    await PublishAsync(http, 20_000);
    await WaitTailAsync(s2, session, 20_000, TimeSpan.FromMinutes(1));
}

var rows = new List<string[]>();
Console.Error.WriteLine($"binary {binary}; {Environment.ProcessorCount} cores; {events} events per throughput run, {downEvents} while down");

foreach ((string name, Dictionary<string, string> env) in new[]
{
    ("defaults (linger 100ms, 50 records)", new Dictionary<string, string>()),
    ("S2_BATCHER_MAX_RECORDS=1000", new Dictionary<string, string> { ["S2_BATCHER_MAX_RECORDS"] = "1000" }),
})
{
    await using S2StandIn.S2StandIn s2 = await S2StandIn.S2StandIn.StartAsync(new S2StandInOptions { AccessToken = Token });
    await using Daemon daemon = await S2Daemon.StartAsync(binary, s2, env);
    using HttpClient http = daemon.Client();
    string session = await StartSessionAsync(http);
    var clock = Stopwatch.StartNew();
    await PublishAsync(http, events);
    TimeSpan published = clock.Elapsed;
    await WaitTailAsync(s2, session, events, TimeSpan.FromMinutes(5));
    TimeSpan shipped = clock.Elapsed;
    int appends = s2.CountOf(S2Op.Append);
    (long rss, long hwm) = daemon.Memory();
    Console.Error.WriteLine($"{name}: published in {published.TotalSeconds:0.00}s, in S2 after {shipped.TotalSeconds:0.00}s");
    rows.Add([name, N(events), Rate(events, published), Rate(events, shipped), N(appends),
        (events / (double)appends).ToString("0.0", CultureInfo.InvariantCulture), Mb(rss), Mb(hwm)]);
}

var downRows = new List<string[]>();
{
    await using S2StandIn.S2StandIn s2 = await S2StandIn.S2StandIn.StartAsync(new S2StandInOptions { AccessToken = Token });
    await using Daemon daemon = await S2Daemon.StartAsync(binary, s2, new Dictionary<string, string>());
    using HttpClient http = daemon.Client();
    string session = await StartSessionAsync(http);
    await PublishAsync(http, 10);
    await WaitTailAsync(s2, session, 10, TimeSpan.FromSeconds(30));
    (long idleRss, _) = daemon.Memory();
    downRows.Add(["S2 up, session started, 10 events shipped", Mb(idleRss), Mb(daemon.Memory().Hwm), "-"]);

    s2.Faults.GoDown();
    long peakRss = 0;
    using var sampling = new CancellationTokenSource();
    Task sampler = Task.Run(async () =>
    {
        while (!sampling.IsCancellationRequested)
        {
            peakRss = Math.Max(peakRss, daemon.Memory().Rss);
            await Task.Delay(20);
        }
    });
    var clock = Stopwatch.StartNew();
    await PublishAsync(http, downEvents);
    TimeSpan published = clock.Elapsed;
    await Task.Delay(3000); // the shipper retries one batch meanwhile
    (long rss, long hwm) = daemon.Memory();
    downRows.Add([$"S2 down, {N(downEvents)} events published ({Rate(downEvents, published)} ev/s), +3 s",
        Mb(rss), Mb(hwm), Mb(peakRss)]);

    s2.Faults.ComeBackUp();
    clock.Restart();
    await WaitTailAsync(s2, session, downEvents + 10, TimeSpan.FromMinutes(5));
    TimeSpan caughtUp = clock.Elapsed;
    await sampling.CancelAsync();
    await sampler;
    (rss, hwm) = daemon.Memory();
    downRows.Add([$"S2 back: caught up from the JSONL files in {caughtUp.TotalSeconds:0.0} s ({Rate(downEvents, caughtUp)} ev/s)",
        Mb(rss), Mb(hwm), Mb(peakRss)]);
}

{
    // Baseline: the same publishing without S2 configured, so the table shows what shipping adds.
    await using Daemon daemon = await S2Daemon.StartAsync(binary, null, new Dictionary<string, string>());
    using HttpClient http = daemon.Client();
    await StartSessionAsync(http);
    await PublishAsync(http, downEvents);
    await Task.Delay(3000);
    (long rss, long hwm) = daemon.Memory();
    downRows.Add([$"baseline: S2 not configured, {N(downEvents)} events published, +3 s", Mb(rss), Mb(hwm), "-"]);
}

Console.WriteLine();
Console.WriteLine($"Shipping throughput to the S2 stand-in over loopback ({Environment.ProcessorCount} cores, ~{EnvelopeBytes()} B envelopes, one publisher, NDJSON batches of 1000)");
Console.WriteLine();
Table(["batcher", "events", "publish ev/s", "shipped ev/s (until S2 tail = N)", "appends", "records/append", "RSS MiB", "HWM MiB"], rows);
Console.WriteLine();
Console.WriteLine("Daemon memory while S2 is down (defaults; VmRSS / VmHWM from /proc/<pid>/status)");
Console.WriteLine();
Table(["phase", "VmRSS MiB", "VmHWM MiB", "peak RSS sampled MiB"], downRows);
return 0;

static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
static string Rate(long n, TimeSpan t) => (n / t.TotalSeconds).ToString("N0", CultureInfo.InvariantCulture);
static string Mb(long bytes) => (bytes / 1024.0 / 1024.0).ToString("0.0", CultureInfo.InvariantCulture);

static void Table(string[] header, List<string[]> rows)
{
    Console.WriteLine("| " + string.Join(" | ", header) + " |");
    Console.WriteLine("|" + string.Concat(header.Select((_, i) => i == 0 ? "---|" : "---:|")));
    foreach (string[] row in rows) Console.WriteLine("| " + string.Join(" | ", row) + " |");
}

static string Event(int k) =>
    $"{{\"type\":\"console.log\",\"url\":\"https://example.com/page\",\"data\":{{\"k\":{k},\"message\":\"benchmark event with a typical console message of about a hundred bytes of text\"}}}}\n";

static int EnvelopeBytes() => Event(12345).Length + 120;

static async Task PublishAsync(HttpClient http, int count)
{
    const int batch = 1000;
    for (int done = 0; done < count; done += batch)
    {
        int n = Math.Min(batch, count - done);
        var sb = new StringBuilder(n * 200);
        for (int i = 0; i < n; i++) sb.Append(Event(done + i));
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(sb.ToString()));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        using HttpResponseMessage r = await http.PostAsync("/events/publish", content);
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"publish → {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
    }
}

static async Task<string> StartSessionAsync(HttpClient http)
{
    using HttpResponseMessage r = await http.PostAsync("/events/start", null);
    string body = await r.Content.ReadAsStringAsync();
    if ((int)r.StatusCode != 201) throw new InvalidOperationException("start → " + body);
    using JsonDocument doc = JsonDocument.Parse(body);
    return doc.RootElement.GetProperty("id").GetString()!;
}

static async Task WaitTailAsync(S2StandIn.S2StandIn s2, string stream, long count, TimeSpan timeout)
{
    var clock = Stopwatch.StartNew();
    while ((s2.Tail(Basin, stream)?.SeqNum ?? 0) < count)
    {
        if (clock.Elapsed > timeout) throw new TimeoutException($"S2 tail {s2.Tail(Basin, stream)?.SeqNum} < {count} after {timeout}");
        await Task.Delay(2);
    }
}


/// <summary>Starts the bench daemon on a fresh data directory, pointed at the stand-in when there is one.</summary>
internal static class S2Daemon
{
    public static Task<Daemon> StartAsync(string binary, S2StandIn.S2StandIn? s2, Dictionary<string, string> env)
    {
        var all = new Dictionary<string, string>(env);
        if (s2 is not null)
        {
            all["S2_BASIN"] = BenchS2.Basin;
            all["S2_ACCESS_TOKEN"] = BenchS2.Token;
            all["S2_ENDPOINT"] = s2.Endpoint;
        }
        return Daemon.StartAsync(binary, dataDir: null, all);
    }
}

internal static class BenchS2
{
    public const string Basin = "aotevents-bench";
    public const string Token = "bench-token";
}
