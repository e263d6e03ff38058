using AotEvents.Events;
using AotEvents.Pipeline;
using AotEvents.Storage;

namespace AotEvents.Core.Tests;

/// <summary>SPEC §3 ack=disk and §5: group commit, fsync cadence, rotation, close.</summary>
public sealed class JsonlWriterTests
{
    private static JsonlWriter NewWriter(string dir, TimeSpan fsyncInterval, TimeSpan? retryDelay = null,
        long segmentBytes = 64L * 1024 * 1024) =>
        new(new JsonlWriterOptions
        {
            DataDir = dir,
            FsyncInterval = fsyncInterval,
            RetryDelay = retryDelay ?? TimeSpan.FromSeconds(1),
            SegmentBytes = segmentBytes,
            MaxQueueBytes = long.MaxValue,
        }, 0, _ => { });

    [Fact]
    public async Task Lines_are_appended_per_category_in_seq_order()
    {
        using var dir = new TempDir();
        CaptureSession s = Files.Session();
        using (var writer = NewWriter(dir.Path, TimeSpan.FromMilliseconds(200)))
        {
            long written = 0;
            writer.Written += seq => Interlocked.Exchange(ref written, seq);
            for (int i = 1; i <= 30; i++) writer.Enqueue(Files.Envelope(i, s, (EventCategory)(i % 3)));
            await writer.FlushAsync().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(30, writer.WrittenSeq);
            Assert.Equal(30, writer.DurableSeq);
            Assert.Equal(30, Interlocked.Read(ref written));
            Assert.Equal(0, writer.QueuedBytes);
        }
        Assert.Equal(Enumerable.Range(1, 30).Where(i => i % 3 == 0).Select(i => (long)i), Files.Lines(dir.Path, EventCategory.Console).Select(Files.Seq));
        Assert.Equal(Enumerable.Range(1, 30).Where(i => i % 3 == 1).Select(i => (long)i), Files.Lines(dir.Path, EventCategory.Network).Select(Files.Seq));
        Assert.Equal(Enumerable.Range(1, 30).Where(i => i % 3 == 2).Select(i => (long)i), Files.Lines(dir.Path, EventCategory.Page).Select(Files.Seq));
        Assert.False(File.Exists(dir.File("system.log"))); // opened lazily
    }

    private const long CachedTail = JsonlWriter.CachedTailBytes;

    [Fact]
    public async Task Synced_bytes_behind_the_cached_tail_leave_the_page_cache_and_stay_readable()
    {
        using var dir = new TempDir();
        CaptureSession s = Files.Session();
        const int Events = 8000; // 8000 × ~4.2 KB ≈ 33 MB, well past the 8 MiB cached tail
        using (var writer = NewWriter(dir.Path, TimeSpan.FromMilliseconds(50)))
        {
            for (int i = 1; i <= Events; i++)
            {
                writer.Enqueue(Files.Envelope(i, s, dataBytes: 4000));
                if (i % 500 == 0) await writer.FlushAsync().WaitAsync(TimeSpan.FromSeconds(10)); // several syncs, as in service
            }
            await writer.FlushAsync().WaitAsync(TimeSpan.FromSeconds(10));

            string path = JsonlFiles.ActivePath(dir.Path, EventCategory.Console);
            long length = new FileInfo(path).Length;
            long cached = CachedBytes(path);
            Assert.True(length > 3 * CachedTail, $"file is only {length} bytes");
            // The tail stays (plus at most one 2 MiB release step not yet handed back, and a folio at its edge);
            // everything before it went.
            Assert.True(cached <= CachedTail + (2 * JsonlWriter.CacheReleaseStep), $"{cached} of {length} bytes still cached");
            Assert.True(cached >= CachedTail / 2, $"only {cached} bytes cached: the tail should stay");
        }
        // Dropped from the cache is not dropped from the file.
        Assert.Equal(Enumerable.Range(1, Events).Select(i => (long)i), Files.Lines(dir.Path, EventCategory.Console).Select(Files.Seq));
    }

    /// <summary>Bytes of <paramref name="path"/> resident in the page cache, from util-linux <c>fincore</c>.</summary>
    private static long CachedBytes(string path)
    {
        var start = new System.Diagnostics.ProcessStartInfo("fincore", ["--bytes", "--noheadings", "--raw", "--output", "RES", path])
        {
            RedirectStandardOutput = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        return long.Parse(output, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Written_bytes_are_fsynced_within_the_fsync_interval()
    {
        using var dir = new TempDir();
        using var writer = NewWriter(dir.Path, TimeSpan.FromMilliseconds(100), retryDelay: TimeSpan.FromSeconds(10));
        writer.Enqueue(Files.Envelope(1, Files.Session()));
        Assert.True(SpinWait.SpinUntil(() => writer.DurableSeq >= 1, TimeSpan.FromSeconds(3)),
            $"not fsync'd after 3 s with a 100 ms interval (written {writer.WrittenSeq}, durable {writer.DurableSeq})");
    }

    [Fact]
    public async Task Ack_disk_wait_is_answered_promptly_even_right_after_an_unsynced_batch()
    {
        using var dir = new TempDir();
        CaptureSession s = Files.Session();
        using var writer = NewWriter(dir.Path, TimeSpan.FromSeconds(30), retryDelay: TimeSpan.FromSeconds(10));
        writer.Enqueue(Files.Envelope(1, s));
        Assert.True(SpinWait.SpinUntil(() => writer.WrittenSeq >= 1, TimeSpan.FromSeconds(3)));
        writer.Enqueue(Files.Envelope(2, s));
        await writer.WaitDurableAsync(2).WaitAsync(TimeSpan.FromSeconds(3));
        Assert.True(writer.DurableSeq >= 2);
        Assert.True(writer.WaitDurableAsync(2).IsCompletedSuccessfully); // already durable: no waiting
    }

    [Fact]
    public async Task WaitDurableAsync_completes_only_after_the_fsync_that_covers_the_seq()
    {
        using var h = new Harness(fsyncInterval: TimeSpan.FromSeconds(30));
        for (int round = 0; round < 20; round++)
        {
            long seq = h.Publish("{\"type\":\"console.x\"}").Envelope.Seq;
            Task wait = h.Pipeline.Writer.WaitDurableAsync(seq);
            await wait.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.True(h.Pipeline.Writer.DurableSeq >= seq);
            Assert.True(h.Pipeline.Writer.WrittenSeq >= seq);
            Assert.Equal(round + 1, h.Lines(EventCategory.Console).Count);
        }
    }

    [Fact]
    public async Task FlushAsync_waits_for_the_batch_the_writer_is_in_the_middle_of_writing()
    {
        using var dir = new TempDir();
        CaptureSession s = Files.Session();
        using var writer = NewWriter(dir.Path, TimeSpan.FromSeconds(30), segmentBytes: long.MaxValue);
        string path = dir.File("console.log");
        long Length() => File.Exists(path) ? new FileInfo(path).Length : 0;
        // One 48 MB line: the writer takes it as a batch of its own and spends many milliseconds in the write.
        Envelope big = Files.Envelope(1, s, dataBytes: 48 << 20);
        for (long seq = 1; seq <= 3; seq++)
        {
            long before = Length();
            writer.Enqueue(new Envelope(seq, big.Line, EventCategory.Console, SourceKind.KernelApi, 0, 0, s));
            // Wait until the writer has taken the batch and is writing it, then ask for a flush.
            Assert.True(SpinWait.SpinUntil(() => Length() > before, TimeSpan.FromSeconds(10)));
            await writer.FlushAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.True(writer.DurableSeq >= seq, $"FlushAsync completed with durable {writer.DurableSeq} < {seq}");
            Assert.Equal(before + big.Line.Length, Length());
        }
    }

    [Fact]
    public async Task Segments_rotate_at_SegmentBytes_and_replay_in_order()
    {
        const long segment = 4096;
        using var h = new Harness(segmentBytes: segment);
        for (int i = 1; i <= 100; i++)
        {
            long seq = h.Publish("{\"type\":\"console.x\",\"data\":{\"i\":" + i + "}}").Envelope.Seq;
            await h.Pipeline.Writer.WaitDurableAsync(seq).WaitAsync(TimeSpan.FromSeconds(5)); // one batch per event
        }
        int lineBytes = h.Lines(EventCategory.Console)[^1].Length + 1;

        var rotated = JsonlFiles.RotatedSegments(h.Dir, EventCategory.Console);
        Assert.True(rotated.Count >= 3, $"{rotated.Count} rotated segments");
        Assert.Equal(Enumerable.Range(1, rotated.Count), rotated.Select(r => r.Number));
        Assert.True(File.Exists(Path.Combine(h.Dir, "console.1.log")));
        Assert.Equal(Path.Combine(h.Dir, "console.1.log"), JsonlFiles.RotatedPath(h.Dir, EventCategory.Console, 1));
        foreach (var (_, path) in rotated)
            Assert.InRange(new FileInfo(path).Length, segment, segment + lineBytes + 16);

        // Reading the segments oldest first gives 1..100 in order.
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), h.Lines(EventCategory.Console).Select(Files.Seq));

        // After a restart the seq continues from the segments, and rotation numbering goes on.
        h.Reopen();
        Assert.Equal(100, h.Pipeline.LastSeq);
        for (int i = 101; i <= 130; i++)
        {
            long seq = h.Publish("{\"type\":\"console.x\",\"data\":{\"i\":" + i + "}}").Envelope.Seq;
            Assert.Equal(i, seq);
            await h.Pipeline.Writer.WaitDurableAsync(seq).WaitAsync(TimeSpan.FromSeconds(5));
        }
        var after = JsonlFiles.RotatedSegments(h.Dir, EventCategory.Console);
        Assert.True(after.Count > rotated.Count);
        Assert.Equal(Enumerable.Range(1, after.Count), after.Select(r => r.Number));
        Assert.Equal(Enumerable.Range(1, 130).Select(i => (long)i), h.Lines(EventCategory.Console).Select(Files.Seq));
    }

    [Fact]
    public void Recovery_finds_the_last_seq_when_only_rotated_segments_exist()
    {
        using var h = new Harness(segmentBytes: 1); // every batch rotates
        for (int i = 0; i < 3; i++)
        {
            long seq = h.Publish("{\"type\":\"page.x\"}").Envelope.Seq;
            Assert.True(SpinWait.SpinUntil(() => h.Pipeline.Writer.WrittenSeq >= seq, TimeSpan.FromSeconds(5)));
        }
        h.Pipeline.Dispose();
        Assert.False(File.Exists(Path.Combine(h.Dir, "page.log")));
        h.Reopen();
        Assert.Equal(3, h.Pipeline.LastSeq);
        Assert.Equal(4, h.Publish("{\"type\":\"page.x\"}").Envelope.Seq);
    }

    // ---- close ---------------------------------------------------------------------------

    [Fact]
    public async Task Writes_after_close_fail_cleanly()
    {
        using var h = new Harness();
        h.PublishOk("{\"type\":\"console.x\"}");
        h.PublishOk("{\"type\":\"console.y\"}");
        CaptureSession session = h.Session;
        h.Pipeline.Dispose();
        string before = File.ReadAllText(Path.Combine(h.Dir, "console.log"));

        // The pipeline refuses with a clear status; nothing is sequenced.
        PublishOutcome single = h.Publish("{\"type\":\"console.z\"}");
        Assert.Equal(503, single.Status);
        Assert.Contains("shutting down", single.Message, StringComparison.Ordinal);
        Assert.Equal(503, h.Pipeline.PublishBatch(Text.U8("{\"type\":\"a\"}\n{\"type\":\"b\"}")).Status);
        SessionOutcome stop = h.Pipeline.StopSession();
        Assert.Equal(503, stop.Status);
        Assert.Equal(2, h.Pipeline.LastSeq);
        Assert.Equal(2, h.Pipeline.Ring.LastSeq);
        Assert.Equal(2, session.LastSeq);
        Assert.False(session.IsStopped);

        // The writer itself throws ObjectDisposedException, and an ack=disk wait for an unwritten seq fails.
        Assert.Throws<ObjectDisposedException>(() => h.Pipeline.Writer.Enqueue(Files.Envelope(3, session)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => h.Pipeline.Writer.WaitDurableAsync(3));
        await h.Pipeline.Writer.WaitDurableAsync(2); // what was written is durable
        h.Pipeline.Dispose(); // idempotent
        Assert.Equal(before, File.ReadAllText(Path.Combine(h.Dir, "console.log")));

        // And the session is still running on disk (close is not stop).
        h.Reopen();
        Assert.Equal(session.Id, h.Session.Id);
        Assert.Equal(3, h.Publish("{\"type\":\"console.w\"}").Envelope.Seq);
    }

    [Fact]
    public async Task Close_during_concurrent_publishing_loses_no_accepted_event_and_throws_nowhere()
    {
        using var h = new Harness();
        var accepted = new System.Collections.Concurrent.ConcurrentBag<long>();
        using var started = new CountdownEvent(4);
        var publishers = Enumerable.Range(0, 4).Select(t => Task.Factory.StartNew(() =>
        {
            byte[] body = Text.U8("{\"type\":\"network.x\",\"data\":{\"t\":" + t + "}}");
            started.Signal();
            while (true)
            {
                PublishOutcome o = h.Pipeline.Publish(body);
                if (o.Status == 503) return;
                Assert.True(o.Succeeded, o.Message);
                accepted.Add(o.Envelope.Seq);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        started.Wait(TimeSpan.FromSeconds(5));
        await Task.Delay(50);
        h.Pipeline.Dispose();
        await Task.WhenAll(publishers).WaitAsync(TimeSpan.FromSeconds(20));

        long[] seqs = [.. accepted.Order()];
        Assert.NotEmpty(seqs);
        Assert.Equal(Enumerable.Range(1, seqs.Length).Select(i => (long)i), seqs);
        Assert.Equal(seqs, h.Lines(EventCategory.Network).Select(Files.Seq));
    }
}

[CollectionDefinition("serial", DisableParallelization = true)]
public sealed class SerialCollection;

[Collection("serial")]
public sealed class ResourceTests
{
    private static int OpenDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    [Fact]
    public void Opening_and_closing_pipelines_many_times_leaks_no_file_descriptors()
    {
        Assert.True(Directory.Exists("/proc/self/fd"), "this test counts /proc/self/fd (Linux)");
        using var dir = new TempDir();
        long seq = 0;
        void Cycle()
        {
            using var p = EventPipeline.Open(new EventPipelineOptions { DataDir = dir.Path }, _ => { });
            if (p.ActiveSession is null) Assert.Equal(201, p.StartSession(default).Status);
            foreach (string type in new[] { "console.a", "network.b", "page.c", "captcha.d" })
            {
                PublishOutcome o = p.Publish(Text.U8("{\"type\":\"" + type + "\"}"));
                Assert.Equal(++seq, o.Envelope.Seq);
            }
            if (seq % 8 == 0) Assert.Equal(200, p.StopSession().Status);
            if (seq % 8 == 0) seq++;
        }

        Cycle();
        Cycle();
        int before = OpenDescriptors();
        for (int i = 0; i < 60; i++) Cycle(); // no GC forced: a leaked handle would still be open
        int after = OpenDescriptors();
        Assert.True(after <= before + 3, $"{before} descriptors before, {after} after 60 open/close cycles");

        // Recovery opens every file too; it must close them.
        for (int i = 0; i < 60; i++) JsonlRecovery.RecoverLastSeq(dir.Path, _ => { });
        Assert.True(OpenDescriptors() <= before + 3);
    }
}
