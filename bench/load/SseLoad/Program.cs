using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Threading.Channels;

namespace AotEvents.SseLoad;

/// <summary>
/// Load client for bench/load/run.sh (loopback only).
///
///   sseload fanout --url http://127.0.0.1:PORT [--subscribers 100] [--rate 2000] [--seconds 10]
///                  [--warmup 2] [--publishers 4]
///     Opens N SSE subscribers (live), then publishes single events at a steady rate; every event
///     carries its send time (Stopwatch ticks, same process) in data.sent_ticks. Checks that every
///     subscriber received every published seq, in order, with no gap or duplicate, and reports
///     publish→receive latency percentiles (measured after the warm-up).
///
///   sseload idle --url http://127.0.0.1:PORT --pid PID [--count 1000] [--settle 2]
///     Reads the server's VmRSS, opens COUNT idle SSE subscribers, waits, reads VmRSS again and
///     reports the difference per subscriber.
///
/// Output: one line "RESULT key=value …" that run.sh parses, plus human-readable notes on stderr.
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: sseload fanout|idle --url http://127.0.0.1:PORT …");
            return 2;
        }
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 1; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
        var url = new Uri(options.GetValueOrDefault("url", "http://127.0.0.1:10001"));
        if (!IPAddress.TryParse(url.Host, out IPAddress? address) || !IPAddress.IsLoopback(address))
        {
            Console.Error.WriteLine("sseload talks to loopback addresses only (use http://127.0.0.1:PORT)");
            return 2;
        }
        int Int(string name, int fallback) =>
            options.TryGetValue(name, out string? v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            MaxConnectionsPerServer = int.MaxValue,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
        };
        using var client = new HttpClient(handler) { BaseAddress = url, Timeout = Timeout.InfiniteTimeSpan };

        return args[0] switch
        {
            "fanout" => await Fanout.RunAsync(client, Int("subscribers", 100), Int("rate", 2000), Int("seconds", 10),
                Int("warmup", 2), Int("publishers", 4)).ConfigureAwait(false),
            "idle" => await Idle.RunAsync(client, Int("pid", 0), Int("count", 1000), Int("settle", 2)).ConfigureAwait(false),
            _ => Usage(args[0]),
        };
    }

    private static int Usage(string mode)
    {
        Console.Error.WriteLine($"unknown mode {mode} (fanout or idle)");
        return 2;
    }
}

/// <summary>One SSE connection: reads frames, checks ids, records latency.</summary>
internal sealed class Subscriber(HttpClient client, Histogram? histogram)
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _received;

    public Task Open => _open.Task;
    public long FirstId { get; private set; }
    public long LastId => Volatile.Read(ref _lastId);
    private long _lastId;
    public long Received => Volatile.Read(ref _received);
    public long Gaps { get; private set; }
    public long OutOfOrder { get; private set; }
    public long Dropped { get; private set; }
    public long SeqMismatch { get; private set; }
    public string? Error { get; private set; }

    /// <summary>Latency is recorded only for events sent at or after this Stopwatch timestamp.</summary>
    public long MeasureFrom { get; set; } = long.MaxValue;

    public async Task RunAsync(CancellationToken cancel)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/events/stream");
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            using HttpResponseMessage response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel)
                .ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"stream answered {(int)response.StatusCode}");
            using Stream stream = await response.Content.ReadAsStreamAsync(cancel).ConfigureAwait(false);
            byte[] buffer = new byte[64 * 1024];
            int filled = 0;
            while (true)
            {
                if (filled == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
                int n = await stream.ReadAsync(buffer.AsMemory(filled), cancel).ConfigureAwait(false);
                long now = Stopwatch.GetTimestamp();
                if (n == 0) break;
                filled += n;
                int consumed = ParseFrames(buffer.AsSpan(0, filled), now);
                if (consumed > 0)
                {
                    buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                    filled -= consumed;
                }
                _open.TrySetResult(); // the stream opened: the preamble (retry + comment) arrived
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is HttpRequestException or IOException or InvalidOperationException)
        {
            Error = e.Message;
            _open.TrySetException(e);
        }
        _open.TrySetResult();
    }

    private int ParseFrames(ReadOnlySpan<byte> text, long now)
    {
        int consumed = 0;
        while (true)
        {
            int end = text[consumed..].IndexOf("\n\n"u8);
            if (end < 0) return consumed;
            Frame(text.Slice(consumed, end), now);
            consumed += end + 2;
        }
    }

    private void Frame(ReadOnlySpan<byte> frame, long now)
    {
        long id = -1;
        bool dropped = false;
        ReadOnlySpan<byte> data = default;
        while (!frame.IsEmpty)
        {
            int nl = frame.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = nl < 0 ? frame : frame[..nl];
            frame = nl < 0 ? default : frame[(nl + 1)..];
            if (line.StartsWith("id: "u8)) Utf8Parser.TryParse(line[4..], out id, out _);
            else if (line.StartsWith("data: "u8)) data = line[6..];
            else if (line.StartsWith("event: dropped"u8)) dropped = true;
        }
        if (dropped)
        {
            Dropped++;
            return;
        }
        if (id < 0) return; // retry / comment / keepalive

        if (FirstId == 0) FirstId = id;
        else if (id != _lastId + 1)
        {
            if (id > _lastId + 1) Gaps += id - _lastId - 1;
            else OutOfOrder++;
        }
        Volatile.Write(ref _lastId, id);
        Interlocked.Increment(ref _received);

        if (Number(data, "\"seq\":"u8) != id) SeqMismatch++;
        long sent = Number(data, "\"sent_ticks\":"u8);
        if (histogram is not null && sent >= MeasureFrom) histogram.Add(now - sent);
    }

    private static long Number(ReadOnlySpan<byte> json, ReadOnlySpan<byte> key)
    {
        int at = json.IndexOf(key);
        if (at < 0) return -1;
        return Utf8Parser.TryParse(json[(at + key.Length)..], out long value, out _) ? value : -1;
    }
}

/// <summary>Latency histogram in Stopwatch ticks, 10 µs buckets up to 1 s; one per subscriber, merged at the end.</summary>
internal sealed class Histogram
{
    private const int BucketMicros = 10;
    private readonly long[] _buckets = new long[100_001];
    public long Count { get; private set; }
    public long MaxMicros { get; private set; }

    public void Add(long ticks)
    {
        long micros = ticks * 1_000_000 / Stopwatch.Frequency;
        if (micros < 0) micros = 0;
        _buckets[Math.Min(micros / BucketMicros, _buckets.Length - 1)]++;
        Count++;
        if (micros > MaxMicros) MaxMicros = micros;
    }

    public void Merge(Histogram other)
    {
        for (int i = 0; i < _buckets.Length; i++) _buckets[i] += other._buckets[i];
        Count += other.Count;
        MaxMicros = Math.Max(MaxMicros, other.MaxMicros);
    }

    public double PercentileMillis(double p)
    {
        if (Count == 0) return double.NaN;
        long rank = (long)Math.Ceiling(Count * p / 100.0);
        long seen = 0;
        for (int i = 0; i < _buckets.Length; i++)
        {
            seen += _buckets[i];
            if (seen >= rank) return (i + 1) * BucketMicros / 1000.0; // upper edge of the bucket
        }
        return MaxMicros / 1000.0;
    }
}

internal static class Fanout
{
    // ~300-byte event JSON (the envelope adds ~110 bytes); sent_ticks is filled per event.
    private const string Head = "{\"type\":\"console.log\",\"category\":\"console\",\"detail_level\":\"standard\"," +
        "\"source\":{\"kind\":\"extension\",\"event\":\"Runtime.consoleAPICalled\",\"metadata\":{\"target_id\":\"T1\"}}," +
        "\"url\":\"https://shop.example.com/checkout?step=2\",\"data\":{\"sent_ticks\":";
    private const string Tail = ",\"level\":\"info\",\"args\":[\"cart updated\",{\"items\":3,\"total\":\"59.90\"}]," +
        "\"stack\":\"at updateCart (app.js:120:14)\"}}";

    public static async Task<int> RunAsync(HttpClient client, int subscriberCount, int rate, int seconds, int warmup, int publishers)
    {
        using var cancel = new CancellationTokenSource();
        var subscribers = new Subscriber[subscriberCount];
        var histograms = new Histogram[subscriberCount];
        var runs = new Task[subscriberCount];
        for (int i = 0; i < subscriberCount; i++)
        {
            histograms[i] = new Histogram();
            subscribers[i] = new Subscriber(client, histograms[i]);
            Subscriber s = subscribers[i];
            runs[i] = Task.Run(() => s.RunAsync(cancel.Token));
        }
        try
        {
            await Task.WhenAll(subscribers.Select(s => s.Open)).WaitAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or HttpRequestException or IOException or InvalidOperationException)
        {
            Console.WriteLine($"RESULT ok=0 error=\"subscribers did not open: {e.Message}\"");
            await cancel.CancelAsync().ConfigureAwait(false);
            return 1;
        }

        // Steady pacing: a pacer releases event numbers on schedule; a few keep-alive publishers send them.
        var due = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleWriter = true });
        long total = (long)rate * (warmup + seconds);
        long measureFrom = 0;
        var seqs = new List<long>[publishers];
        long failures = 0;
        string? lastFailure = null;
        var senders = new Task[publishers];
        for (int p = 0; p < publishers; p++)
        {
            var mine = seqs[p] = new List<long>(capacity: (int)(total / publishers + 16));
            senders[p] = Task.Run(async () =>
            {
                await foreach (int number in due.Reader.ReadAllAsync().ConfigureAwait(false))
                {
                    string body = Head + Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture) + Tail;
                    using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                    try
                    {
                        using HttpResponseMessage response = await client.PostAsync("/events/publish", content).ConfigureAwait(false);
                        byte[] answer = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                        int at = answer.AsSpan().IndexOf("\"seq\":"u8);
                        if (response.StatusCode == HttpStatusCode.OK && at >= 0 &&
                            Utf8Parser.TryParse(answer.AsSpan(at + 6), out long seq, out _))
                        {
                            mine.Add(seq);
                        }
                        else
                        {
                            Interlocked.Increment(ref failures);
                            lastFailure = $"{(int)response.StatusCode} {Encoding.UTF8.GetString(answer)}";
                        }
                    }
                    catch (HttpRequestException e)
                    {
                        Interlocked.Increment(ref failures);
                        lastFailure = e.Message;
                    }
                }
            });
        }

        long start = Stopwatch.GetTimestamp();
        long released = 0;
        bool measuring = false;
        while (released < total)
        {
            double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (!measuring && elapsed >= warmup)
            {
                measuring = true;
                measureFrom = Stopwatch.GetTimestamp();
                foreach (Subscriber s in subscribers) s.MeasureFrom = measureFrom;
            }
            long target = Math.Min(total, (long)(elapsed * rate));
            while (released < target) due.Writer.TryWrite((int)released++);
            await Task.Delay(1).ConfigureAwait(false);
        }
        due.Writer.Complete();
        await Task.WhenAll(senders).ConfigureAwait(false);
        double sendSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

        List<long> all = seqs.SelectMany(s => s).ToList();
        all.Sort();
        long published = all.Count;
        long firstSeq = published > 0 ? all[0] : 0;
        long lastSeq = published > 0 ? all[^1] : 0;
        bool contiguous = published > 0 && lastSeq - firstSeq + 1 == published;

        // Let the streams drain (bounded), then stop them.
        long drainDeadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 10;
        while (Stopwatch.GetTimestamp() < drainDeadline && subscribers.Any(s => s.LastId < lastSeq && s.Error is null))
            await Task.Delay(20).ConfigureAwait(false);
        await cancel.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(runs).ConfigureAwait(false);

        int complete = 0;
        long gaps = 0, outOfOrder = 0, dropped = 0, mismatches = 0, deliveries = 0;
        var merged = new Histogram();
        foreach (Subscriber s in subscribers)
        {
            bool ok = s.Error is null && s.FirstId == firstSeq && s.LastId == lastSeq && s.Received == published &&
                s.Gaps == 0 && s.OutOfOrder == 0 && s.Dropped == 0 && s.SeqMismatch == 0;
            if (ok) complete++;
            gaps += s.Gaps;
            outOfOrder += s.OutOfOrder;
            dropped += s.Dropped;
            mismatches += s.SeqMismatch;
            deliveries += s.Received;
        }
        foreach (Histogram h in histograms) merged.Merge(h);

        if (failures > 0) Console.Error.WriteLine($"sseload: {failures} publishes failed, last: {lastFailure}");
        foreach (Subscriber s in subscribers.Where(s => s.Error is not null).Take(3))
            Console.Error.WriteLine($"sseload: subscriber error: {s.Error}");
        bool allOk = complete == subscriberCount && contiguous && failures == 0;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT ok={(allOk ? 1 : 0)} subscribers={subscriberCount} complete={complete} published={published} " +
            $"publish_failures={failures} contiguous={(contiguous ? 1 : 0)} achieved_rate={published / sendSeconds:F0} " +
            $"deliveries={deliveries} expected_deliveries={published * subscriberCount} gaps={gaps} out_of_order={outOfOrder} " +
            $"dropped_frames={dropped} seq_mismatch={mismatches} samples={merged.Count} " +
            $"p50_ms={merged.PercentileMillis(50):F2} p90_ms={merged.PercentileMillis(90):F2} " +
            $"p99_ms={merged.PercentileMillis(99):F2} p999_ms={merged.PercentileMillis(99.9):F2} max_ms={merged.MaxMicros / 1000.0:F2}"));
        return allOk ? 0 : 1;
    }
}

internal static class Idle
{
    public static async Task<int> RunAsync(HttpClient client, int pid, int count, int settle)
    {
        if (pid <= 0)
        {
            Console.Error.WriteLine("idle needs --pid of the server");
            return 2;
        }
        long before = RssKb(pid);
        using var cancel = new CancellationTokenSource();
        var subscribers = new Subscriber[count];
        var runs = new Task[count];
        for (int i = 0; i < count; i++)
        {
            subscribers[i] = new Subscriber(client, null);
            Subscriber s = subscribers[i];
            runs[i] = Task.Run(() => s.RunAsync(cancel.Token));
            if (i % 50 == 49) await Task.WhenAll(subscribers.Skip(i - 49).Take(50).Select(x => x.Open)).ConfigureAwait(false);
        }
        int open = 0;
        try
        {
            await Task.WhenAll(subscribers.Select(s => s.Open)).WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or HttpRequestException or IOException or InvalidOperationException)
        {
            Console.Error.WriteLine($"sseload: not every subscriber opened: {e.Message}");
        }
        open = subscribers.Count(s => s.Open.IsCompletedSuccessfully && s.Error is null);
        await Task.Delay(TimeSpan.FromSeconds(settle)).ConfigureAwait(false);
        long after = RssKb(pid);
        open = Math.Min(open, subscribers.Count(s => s.Error is null));
        await cancel.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(runs).ConfigureAwait(false);
        double perSubBytes = open > 0 ? (after - before) * 1024.0 / open : double.NaN;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT ok={(open == count ? 1 : 0)} count={count} open={open} rss_before_kb={before} rss_after_kb={after} per_sub_bytes={perSubBytes:F0}"));
        return open == count ? 0 : 1;
    }

    private static long RssKb(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
        }
        return -1;
    }
}
