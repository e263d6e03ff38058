using System.Text.Json;
using AotEvents.Events;
using AotEvents.Pipeline;

namespace AotEvents.Core.Tests;

/// <summary>Seq order = ring order = file order under concurrent publishers and readers.</summary>
public sealed class ConcurrencyTests
{
    private static readonly string[] Types = ["console.log", "network.request", "page.load", "interaction.click", "liveview.frame", "captcha.seen", "boot"];

    [Fact]
    public async Task Eight_threads_times_10k_publishes_are_read_back_1_to_80000_in_order_by_3_readers_and_from_the_files()
    {
        const int threads = 8, perThread = 10_000, total = threads * perThread;
        using var h = new Harness(ringCapacity: 1 << 17, ringMaxBytes: 1L << 30);
        Assert.Equal(0, h.Pipeline.LastSeq);

        async Task<long[]> ReadAll(RingReader reader)
        {
            var seqs = new long[total];
            int n = 0;
            while (n < total)
            {
                if (!reader.TryRead(out RingReadResult r))
                {
                    await reader.WaitAsync();
                    continue;
                }
                Assert.False(r.IsDropped, $"reader dropped {r.Dropped} envelopes");
                Assert.Equal(r.Envelope.Seq, Storage.JsonlRecovery.ReadSeqFast(r.Envelope.Json));
                seqs[n++] = r.Envelope.Seq;
            }
            return seqs;
        }

        Task<long[]>[] readers = [.. Enumerable.Range(0, 3).Select(_ => new RingReader(h.Pipeline.Ring, 0)).Select(r => Task.Run(() => ReadAll(r)))];

        using var go = new Barrier(threads);
        var publishers = Enumerable.Range(0, threads).Select(t => Task.Factory.StartNew(() =>
        {
            var bodies = new byte[perThread][];
            for (int i = 0; i < perThread; i++)
                bodies[i] = Text.U8($"{{\"type\":\"{Types[(t + i) % Types.Length]}\",\"data\":{{\"t\":{t},\"i\":{i}}}}}");
            go.SignalAndWait();
            for (int i = 0; i < perThread; i++)
            {
                PublishOutcome o = h.Pipeline.Publish(bodies[i]);
                if (!o.Succeeded) throw new InvalidOperationException($"{o.Status} {o.Message}");
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(publishers).WaitAsync(TimeSpan.FromSeconds(40));

        long[] expected = [.. Enumerable.Range(1, total).Select(i => (long)i)];
        foreach (long[] seqs in await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(20)))
            Assert.Equal(expected, seqs);
        Assert.Equal(total, h.Pipeline.LastSeq);
        Assert.Equal(total, h.Session.Published);

        // The files: every line a valid envelope; within each file seq order; across files exactly 1..80000;
        // and each publisher's own events keep its order.
        await h.Pipeline.Writer.FlushAsync().WaitAsync(TimeSpan.FromSeconds(20));
        var all = new List<long>(total);
        var seqOfThreadEvent = new long[threads, perThread];
        for (int c = 0; c < EventVocabulary.CategoryCount; c++)
        {
            long previous = 0;
            foreach (string line in h.Lines((EventCategory)c))
            {
                using var doc = JsonDocument.Parse(line);
                JsonElement root = doc.RootElement;
                long seq = root.GetProperty("seq").GetInt64();
                Assert.True(seq > previous, $"{(EventCategory)c}.log: {seq} after {previous}");
                previous = seq;
                Assert.Equal(h.Session.Id, root.GetProperty("capture_session_id").GetString());
                JsonElement ev = root.GetProperty("event");
                Assert.Equal(EventVocabulary.Name((EventCategory)c), ev.GetProperty("category").GetString());
                JsonElement data = ev.GetProperty("data");
                seqOfThreadEvent[data.GetProperty("t").GetInt32(), data.GetProperty("i").GetInt32()] = seq;
                all.Add(seq);
            }
        }
        all.Sort();
        Assert.Equal(expected, all);
        for (int t = 0; t < threads; t++)
            for (int i = 1; i < perThread; i++)
                Assert.True(seqOfThreadEvent[t, i] > seqOfThreadEvent[t, i - 1]);
    }

    [Fact]
    public async Task Thousand_concurrent_ack_disk_writes_give_1000_valid_lines_and_share_fsyncs()
    {
        using var h = new Harness();
        var tasks = Enumerable.Range(0, 1000).Select(i => Task.Run(async () =>
        {
            PublishOutcome o = h.Pipeline.Publish(Text.U8($"{{\"type\":\"{Types[i % Types.Length]}\",\"data\":{{\"i\":{i}}}}}"));
            Assert.True(o.Succeeded, o.Message);
            long seq = o.Envelope.Seq;
            await h.Pipeline.Writer.WaitDurableAsync(seq);
            // ack=disk: when the wait completes the fsync covers this seq.
            Assert.True(h.Pipeline.Writer.DurableSeq >= seq, $"durable {h.Pipeline.Writer.DurableSeq} < {seq}");
            return seq;
        })).ToArray();
        long[] seqs = await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), seqs.Order());
        Assert.Equal(1000, h.Pipeline.Writer.DurableSeq);

        // Already on disk before the pipeline is closed.
        List<string> lines = Files.AllLines(h.Dir);
        Assert.Equal(1000, lines.Count);
        var seen = new HashSet<long>();
        var indices = new HashSet<int>();
        foreach (string line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            Assert.True(seen.Add(doc.RootElement.GetProperty("seq").GetInt64()));
            Assert.True(indices.Add(doc.RootElement.GetProperty("event").GetProperty("data").GetProperty("i").GetInt32()));
        }
        Assert.Equal(1000, indices.Count);
    }

    [Fact]
    public async Task Many_concurrent_durable_waiters_complete_together_after_one_fsync()
    {
        using var dir = new TempDir();
        CaptureSession session = Files.Session();
        using var writer = new Storage.JsonlWriter(new Storage.JsonlWriterOptions
        {
            DataDir = dir.Path,
            FsyncInterval = TimeSpan.FromSeconds(30),
        }, 0, _ => { });
        for (int s = 1; s <= 500; s++) writer.Enqueue(Files.Envelope(s, session));
        var waits = Enumerable.Range(1, 500).Select(s => writer.WaitDurableAsync(s)).ToArray();
        long minDurableSeen = long.MaxValue;
        var checks = waits.Select((t, i) => t.ContinueWith(_ =>
        {
            long d = writer.DurableSeq;
            Assert.True(d >= i + 1);
            InterlockedMin(ref minDurableSeen, d);
        }, TaskScheduler.Default)).ToArray();
        await Task.WhenAll(checks).WaitAsync(TimeSpan.FromSeconds(10));
        // All 500 waiters registered before the writer took the batch share the fsync that covered seq 500.
        Assert.Equal(500, minDurableSeen);
        Assert.All(waits, t => Assert.True(t.IsCompletedSuccessfully));
    }

    private static void InterlockedMin(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) > value &&
               Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }

    [Fact]
    public void Publish_allocates_only_the_envelope_line()
    {
        using var h = new Harness();
        byte[] body = Text.U8("{\"type\":\"console.log\",\"source\":{\"kind\":\"extension\",\"event\":\"Runtime.consoleAPICalled\",\"metadata\":{\"target_id\":\"T1\"}},\"url\":\"https://example.com/\",\"data\":{\"message\":\"hi\",\"n\":[1,2,3]}}");
        // Warm up: thread-static drafts, JIT, and the ring's slot array grown to its full capacity.
        for (int i = 0; i < Math.Max(2000, h.Pipeline.Ring.Capacity + 1); i++) h.Pipeline.Publish(body);
        SpinWait.SpinUntil(() => h.Pipeline.Writer.WrittenSeq == h.Pipeline.LastSeq, TimeSpan.FromSeconds(10));

        int lineLength = h.Pipeline.Publish(body).Envelope.Line.Length;
        long arrayBytes = 24 + ((lineLength + 7) & ~7); // object header + method table + length, padded
        const int chunks = 10, perChunk = 500;
        long Chunk()
        {
            SpinWait.SpinUntil(() => h.Pipeline.Writer.WrittenSeq == h.Pipeline.LastSeq, TimeSpan.FromSeconds(10));
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < perChunk; i++) h.Pipeline.Publish(body);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        // The writer's queue arrays start small and grow to the largest burst: repeat the measured
        // burst until both have (two chunks in a row that allocate only the lines).
        for (int steady = 0, round = 0; steady < 2 && round < 50; round++)
            steady = Chunk() <= perChunk * arrayBytes ? steady + 1 : 0;
        long allocated = 0;
        for (int c = 0; c < chunks; c++) allocated += Chunk();
        double perEvent = (double)allocated / (chunks * perChunk);
        Assert.True(perEvent <= arrayBytes + 1, $"{perEvent:F1} bytes per publish, expected one {arrayBytes}-byte array");
    }
}
