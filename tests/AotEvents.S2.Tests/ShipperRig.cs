using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using AotEvents.Pipeline;
using AotEvents.S2.Shipping;
using AotEvents.Storage;

namespace AotEvents.S2.Tests;

/// <summary>
/// An <see cref="EventPipeline"/> over a temporary data directory and an <see cref="S2Shipper"/>
/// pointed at a stand-in, wired like Program.cs (the shipper reads the JSONL files when it falls
/// behind the ring). The pipeline and shipper can be closed and reopened on the same directory.
/// </summary>
internal sealed partial class ShipperRig : IAsyncDisposable
{
    private readonly ConcurrentQueue<string> _log = new();
    private readonly Func<ShipperOptions> _options;
    private readonly TimeSpan _requestTimeout;
    private readonly int _ringCapacity;
    private int _published;

    private ShipperRig(S2StandIn.S2StandIn s2, string dataDir, int ringCapacity, Func<ShipperOptions> options, TimeSpan requestTimeout)
    {
        S2 = s2;
        DataDir = dataDir;
        _ringCapacity = ringCapacity;
        _options = options;
        _requestTimeout = requestTimeout;
    }

    public S2StandIn.S2StandIn S2 { get; }
    public string DataDir { get; }
    public EventPipeline Pipeline { get; private set; } = null!;
    public S2Shipper Shipper { get; private set; } = null!;
    public string? FixedStream => _options().FixedStream;

    /// <summary>Everything the pipeline and the shipper logged.</summary>
    public string Log => string.Join('\n', _log);

    /// <summary>Fast defaults for tests: 10 ms linger, 50 records, 20..300 ms backoff.</summary>
    public static ShipperOptions FastOptions(string? fixedStream = null, int maxRecords = 50, int lingerMs = 10) => new()
    {
        FixedStream = fixedStream,
        Linger = TimeSpan.FromMilliseconds(lingerMs),
        MaxRecords = maxRecords,
        InitialBackoff = TimeSpan.FromMilliseconds(20),
        MaxBackoff = TimeSpan.FromMilliseconds(300),
    };

    public static async Task<ShipperRig> StartAsync(ShipperOptions? options = null, int ringCapacity = 8192,
        TimeSpan? requestTimeout = null, bool start = true)
    {
        S2StandIn.S2StandIn s2 = await TestSupport.StartStandInAsync();
        string dir = Path.Combine(Path.GetTempPath(), "aotevents-shipper-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        ShipperOptions o = options ?? FastOptions();
        var rig = new ShipperRig(s2, dir, ringCapacity, () => o, requestTimeout ?? TimeSpan.FromSeconds(5));
        rig.Open(start);
        return rig;
    }

    /// <summary>Opens the pipeline over the data directory and a new shipper (started unless asked not to).</summary>
    public void Open(bool start = true)
    {
        Pipeline = EventPipeline.Open(new EventPipelineOptions
        {
            DataDir = DataDir,
            RingCapacity = _ringCapacity,
            FsyncInterval = TimeSpan.FromMilliseconds(50),
        }, message => _log.Enqueue("pipeline: " + message));
        S2Client client = TestSupport.Client(S2, _requestTimeout);
        Shipper = new S2Shipper(client, _options(), Pipeline, ReadFromFiles, DataDir, message => _log.Enqueue("shipper: " + message));
        if (start) Shipper.Start();
    }

    /// <summary>The daemon's shutdown order: close the JSONL files, then flush S2 within <paramref name="flush"/>.</summary>
    public async Task CloseAsync(TimeSpan flush)
    {
        Pipeline.Dispose();
        await Shipper.StopAsync(flush);
        await Shipper.DisposeAsync();
    }

    public async Task ReopenAsync(TimeSpan flush)
    {
        await CloseAsync(flush);
        Open();
    }

    /// <summary>Same as Program.ReadFromFiles.</summary>
    private int ReadFromFiles(long afterSeq, int max, List<(long Seq, byte[] Json)> into)
    {
        using JsonlReplay replay = JsonlReplay.Open(Pipeline.Writer, afterSeq);
        ReplayRead read;
        while (into.Count < max && (read = replay.TryRead(out ReplayItem item)) != ReplayRead.End)
            if (read == ReplayRead.Envelope) into.Add((item.Seq, item.Json.ToArray()));
        return into.Count;
    }

    public string StartSession()
    {
        SessionOutcome outcome = Pipeline.StartSession(default);
        Assert.Equal(201, outcome.Status);
        return outcome.Session!.Id;
    }

    public void StopSession() => Assert.Equal(200, Pipeline.StopSession().Status);

    /// <summary>Publishes <paramref name="count"/> events in NDJSON batches of up to 500; returns the last seq.</summary>
    public long Publish(int count, int padBytes = 40, int batch = 500)
    {
        string pad = new('x', padBytes);
        long last = 0;
        for (int done = 0; done < count;)
        {
            int n = Math.Min(batch, count - done);
            var sb = new StringBuilder(n * (padBytes + 80));
            for (int i = 0; i < n; i++)
            {
                int k = Interlocked.Increment(ref _published);
                sb.Append("{\"type\":\"console.log\",\"data\":{\"k\":").Append(k.ToString(CultureInfo.InvariantCulture))
                    .Append(",\"pad\":\"").Append(pad).Append("\"}}\n");
            }
            PublishOutcome outcome = Pipeline.PublishBatch(Encoding.UTF8.GetBytes(sb.ToString()));
            Assert.True(outcome.Succeeded, outcome.Message);
            last = outcome.LastSeq;
            done += n;
        }
        return last;
    }

    /// <summary>Waits until S2 acknowledged <paramref name="seq"/>.</summary>
    public async Task WaitAckedAsync(long seq, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(30);
        while (Shipper.AckedSeq < seq)
        {
            if (clock.Elapsed > limit)
                Assert.Fail($"S2 acknowledged up to {Shipper.AckedSeq}, not {seq}, within {limit}; log:\n{Log}");
            await Task.Delay(10);
        }
    }

    /// <summary>Waits until everything published is acknowledged.</summary>
    public Task WaitAllAckedAsync(TimeSpan? timeout = null) => WaitAckedAsync(Pipeline.LastSeq, timeout);

    [GeneratedRegex("^\\{\"capture_session_id\":\"([^\"]*)\",\"seq\":(\\d+),")]
    private static partial Regex EnvelopeHead();

    /// <summary>(seq, session, line without '\n') of every JSONL line in the data directory, merged by seq.</summary>
    public List<(long Seq, string Session, string Line)> FileLines()
    {
        var lines = new List<(long, string, string)>();
        foreach (string file in Directory.EnumerateFiles(DataDir, "*.log"))
        {
            foreach (string line in File.ReadLines(file))
            {
                if (line.Length == 0) continue;
                Match m = EnvelopeHead().Match(line);
                Assert.True(m.Success, "not an envelope: " + line);
                lines.Add((long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), m.Groups[1].Value, line));
            }
        }
        lines.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return lines;
    }

    /// <summary>
    /// Every JSONL line is in S2 exactly once, in seq order, byte for byte: in its session's stream
    /// (or the fixed stream). <paramref name="ignore"/> drops foreign records a test put there.
    /// </summary>
    public void AssertExactlyOnce(Func<string, bool>? ignore = null)
    {
        Assert.True(Pipeline.Writer.WrittenSeq >= Pipeline.LastSeq || Pipeline.Writer.Fault is not null,
            "the writer has not written everything yet");
        List<(long Seq, string Session, string Line)> files = FileLines();
        Assert.Equal(Pipeline.LastSeq, files.Count);
        for (int i = 0; i < files.Count; i++) Assert.Equal(i + 1, files[i].Seq);
        IEnumerable<IGrouping<string, (long Seq, string Session, string Line)>> byStream =
            files.GroupBy(f => FixedStream ?? f.Session);
        foreach (var group in byStream)
        {
            List<string> expected = group.Select(f => f.Line).ToList();
            List<string> stored = S2.Bodies(TestSupport.Basin, group.Key).Where(b => ignore is null || !ignore(b)).ToList();
            if (!expected.SequenceEqual(stored))
            {
                var dupes = stored.GroupBy(s => s).Where(g => g.Count() > 1).Select(g => g.Key[..Math.Min(80, g.Key.Length)]).Take(3);
                Assert.Fail($"stream {group.Key}: {stored.Count} records stored, {expected.Count} expected; " +
                    $"duplicates e.g. [{string.Join(" | ", dupes)}]; missing {expected.Except(stored).Count()}; log:\n{Log}");
            }
        }
        Assert.Equal(byStream.Count(), S2.Streams(TestSupport.Basin).Count);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            Pipeline.Dispose();
            await Shipper.DisposeAsync();
        }
        finally
        {
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
}
