using System.Diagnostics;
using static AotEvents.Blackbox.Tests.ReplayRig;

namespace AotEvents.Blackbox.Tests;

/// <summary>
/// SPEC §4 "replay never silently loses events", against the published binary: ring → JSONL
/// catch-up across categories and rotated files, hand-over to live delivery, slow and paused
/// subscribers, and the one <c>event: dropped</c> frame for what retention deleted.
/// </summary>
public sealed class ReplayTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Replay_from_after_seq_0_gives_200k_events_in_order_with_a_ring_of_1024()
    {
        const int Total = 200_000, PerBatch = 1000;
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string>
        {
            ["EVENTS_RING_CAPACITY"] = "1024",
            ["EVENTS_SEGMENT_BYTES"] = "4MiB", // several rotated files per category: replay reads them too
        });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        for (int b = 0; b < Total / PerBatch; b++)
        {
            var (first, last) = await PublishBatchAsync(http, Batch(PerBatch, i => MixedTypes[i % MixedTypes.Length], 40, b * PerBatch));
            Assert.Equal((b * PerBatch + 1L, (b + 1L) * PerBatch), (first, last));
        }
        Assert.Contains(Directory.GetFiles(d.DataDir, "*.log"), f => Path.GetFileName(f).Split('.').Length == 3); // rotated

        // From the start: the files (merged by seq across four categories), then the ring.
        await using (var tap = await StreamTap.OpenAsync(d, "/events/stream?after_seq=0&format=ndjson", startAfter: 0))
        {
            await tap.WaitForAsync(Total, Long, "after_seq=0");
            Assert.Empty(tap.Dropped);
            Assert.Equal(Total, tap.Envelopes);

            // Hand-over to live delivery: no gap, no duplicate.
            var (liveFirst, liveLast) = await PublishBatchAsync(http, Batch(10, i => MixedTypes[i % 4]));
            Assert.Equal(Total + 1, liveFirst);
            await tap.WaitForAsync(liveLast, TimeSpan.FromSeconds(10), "after_seq=0, live part");
            await Task.Delay(200);
            Assert.Equal(liveLast, tap.Position);
            Assert.Null(tap.Error);
        }
        Assert.True(await MetricAsync(http, "aotevents_events_replayed_total") >= Total - 1024,
            "the catch-up did not come from the files");

        // Resuming in the middle with Last-Event-ID over SSE: exactly what follows.
        await using (var sse = await StreamTap.OpenAsync(d, "/events/stream", startAfter: 123_456, headers: "Last-Event-ID: 123456"))
        {
            await sse.WaitForAsync(Total + 10, Long, "Last-Event-ID: 123456");
            Assert.Empty(sse.Dropped);
            Assert.Equal(Total + 10 - 123_456, sse.Envelopes);
        }
    }

    [Fact]
    public async Task Fifty_subscribers_at_different_speeds_one_paused_10s_all_get_everything_in_order_while_publishing_goes_on()
    {
        const int Subscribers = 50, PerBatch = 100, Batches = 300; // 30k events of ~300 bytes over ~13 s
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_RING_CAPACITY"] = "1024" });
        using var http = d.CreateClient();
        await http.StartSessionAsync();

        var taps = new List<StreamTap>();
        try
        {
            for (int i = 0; i < Subscribers; i++)
            {
                // Speeds: as fast as possible, a little slowed, and slowed below the publish rate
                // (4 KiB per 10 ms ≈ 400 KB/s < ~750 KB/s published: they fall behind the ring while
                // connected and must catch up from the files). One is paused: it reads nothing for 10 s.
                int kind = i % 5;
                var tap = await StreamTap.OpenAsync(d, (i % 2 == 0 ? "/events/stream?after_seq=0" : "/events/stream?after_seq=0&format=ndjson"),
                    startAfter: 0,
                    receiveBuffer: kind >= 3 ? 4096 : 0,
                    readChunk: kind >= 3 ? 4096 : 64 * 1024,
                    readDelayMs: kind switch { 0 or 1 => 0, 2 => 1, _ => 10 });
                taps.Add(tap);
            }
            StreamTap paused = taps[^1];
            paused.Paused = true; // before anything is published: its first byte comes after the pause

            var clock = Stopwatch.StartNew();
            long last = 0, atResume = 0;
            bool resumed = false;
            for (int b = 0; b < Batches; b++)
            {
                (_, last) = await PublishBatchAsync(http, Batch(PerBatch, i => MixedTypes[(b + i) % 4], 200, b * PerBatch));
                if (!resumed && clock.Elapsed >= TimeSpan.FromSeconds(10))
                {
                    atResume = last;
                    resumed = true;
                    paused.Paused = false;
                }
                // ~2,300 events/s: the pause ends with about a quarter of the events still to come.
                TimeSpan due = TimeSpan.FromMilliseconds((b + 1) * 43.0);
                if (clock.Elapsed < due) await Task.Delay(due - clock.Elapsed);
            }
            Assert.True(resumed, "publishing ended before the pause did");
            Assert.True(atResume - paused.Position > 1024 * 4,
                $"the paused subscriber (at {paused.Position}) was not far behind the ring when it resumed at {atResume}");
            Assert.Equal((long)PerBatch * Batches, last);

            // Once publishing stops, the slowed ones may read at full speed to finish in bounded time.
            foreach (var t in taps) t.ReadDelayMs = 0;
            for (int i = 0; i < taps.Count; i++) await taps[i].WaitForAsync(last, Long, $"subscriber {i}");
            await Task.Delay(200);
            for (int i = 0; i < taps.Count; i++)
            {
                Assert.Null(taps[i].Error);
                Assert.Empty(taps[i].Dropped);
                Assert.Equal(last, taps[i].Envelopes);
                Assert.Equal(last, taps[i].Position);
            }
            Assert.True(await MetricAsync(http, "aotevents_events_replayed_total") > 0, "nobody was served from the files");
            Assert.Equal(Subscribers, await MetricAsync(http, "aotevents_subscribers"));
        }
        finally
        {
            foreach (var t in taps) await t.DisposeAsync();
        }
    }

    [Fact]
    public async Task Resuming_from_a_seq_retention_deleted_gives_one_dropped_frame_matching_the_files()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string>
        {
            ["EVENTS_RING_CAPACITY"] = "64",
            ["EVENTS_SEGMENT_BYTES"] = "16KiB",
            ["EVENTS_MAX_DISK_BYTES"] = "64KiB",
        });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        long last = 0;
        for (int b = 0; b < 30; b++) (_, last) = await PublishBatchAsync(http, Batch(100, _ => "console.log", 100)); // one category
        await WaitWrittenAsync(http, last);

        JsonlScan scan = JsonlScan.Read(d.DataDir);
        Assert.Empty(scan.Problems);
        Assert.Empty(scan.Duplicates);
        Assert.Equal(last, scan.MaxSeq);
        long oldest = scan.MinSeq;
        Assert.True(oldest > 200, $"retention deleted too little to test anything: {scan.Describe()}");
        Assert.Equal(last - oldest + 1, scan.Seqs.Length); // what is kept is contiguous
        List<(long From, long To)> missing = scan.Missing(101, last);
        Assert.Single(missing);

        // after_seq=100: one dropped frame for exactly the seqs the files lack, then the rest in order.
        await using (var tap = await StreamTap.OpenAsync(d, "/events/stream?after_seq=100", startAfter: 100, record: true))
        {
            await tap.WaitForAsync(last, Long, "after_seq=100");
            await Task.Delay(200);
            DroppedFrame dropped = Assert.Single(tap.Dropped);
            Assert.Equal(
                $"event: dropped\ndata: {{\"from_seq\":{missing[0].From},\"to_seq\":{missing[0].To},\"count\":{missing[0].To - missing[0].From + 1}}}",
                dropped.Raw);
            Assert.Equal(scan.Seqs, tap.Seqs);
            Assert.Null(tap.Error);
        }

        // The same for an EventSource reconnecting with Last-Event-ID, over NDJSON this time.
        await using (var tap = await StreamTap.OpenAsync(d, "/events/stream?format=ndjson", startAfter: 150, record: true,
                         headers: "Last-Event-ID: 150"))
        {
            await tap.WaitForAsync(last, Long, "Last-Event-ID: 150");
            await Task.Delay(200);
            DroppedFrame dropped = Assert.Single(tap.Dropped);
            Assert.Equal((151, oldest - 1, oldest - 151), (dropped.From, dropped.To, dropped.Count));
            Assert.Equal(scan.Seqs, tap.Seqs);
        }

        // after_seq=0: what retention removed before the oldest retained event is not reported.
        await using (var all = await StreamTap.OpenAsync(d, "/events/stream?after_seq=0&format=ndjson", startAfter: oldest - 1))
        {
            await all.WaitForAsync(last, Long, "after_seq=0");
            Assert.Empty(all.Dropped);
            Assert.Equal(scan.Seqs.Length, all.Envelopes);
        }
    }

    [Fact]
    public async Task A_subscriber_lapped_by_retention_while_catching_up_gets_a_dropped_frame_per_deleted_run_and_nothing_else()
    {
        // The daemon-side reader is slowed by a client that reads nothing while the writer deletes
        // files under it: each run of seqs retention deleted before it read them is one frame; every
        // other seq arrives once, in order.
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string>
        {
            ["EVENTS_RING_CAPACITY"] = "64",
            ["EVENTS_SEGMENT_BYTES"] = "64KiB",
            ["EVENTS_MAX_DISK_BYTES"] = "256KiB",
        });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        await using var tap = await StreamTap.OpenAsync(d, "/events/stream?after_seq=0", startAfter: 0, record: true,
            receiveBuffer: 4096, readChunk: 4096, paused: true);
        long last = 0;
        for (int b = 0; b < 80; b++) (_, last) = await PublishBatchAsync(http, Batch(500, _ => "console.log", 200));
        await WaitWrittenAsync(http, last);
        JsonlScan scan = JsonlScan.Read(d.DataDir);
        Assert.Equal(last, scan.MaxSeq);

        tap.Paused = false;
        await tap.WaitForAsync(last, Long, "lapped subscriber");
        await Task.Delay(200);
        Assert.Null(tap.Error); // every item right after the previous one: a partition of 1..last
        Assert.NotEmpty(tap.Dropped);
        var seqs = new HashSet<long>(tap.Seqs);
        foreach (DroppedFrame f in tap.Dropped)
        {
            Assert.Equal(f.To - f.From + 1, f.Count);
            Assert.True(f.To < scan.MinSeq, $"{f.Raw} covers seqs the files still hold (oldest {scan.MinSeq})");
            Assert.True(seqs.Contains(f.From - 1) || f.From == 1, $"{f.Raw} does not follow a delivered seq");
            Assert.True(seqs.Contains(f.To + 1), $"{f.Raw} is not followed by a delivered seq");
        }
        Assert.Equal(last, tap.Seqs.Length + tap.Dropped.Sum(f => f.Count));
        Assert.Equal(scan.Seqs, tap.Seqs.Where(s => s >= scan.MinSeq));
        Assert.Equal(tap.Dropped.Sum(f => f.Count), await MetricAsync(http, "aotevents_events_dropped_total"));
    }

    [Fact]
    public async Task At_shutdown_a_subscriber_still_catching_up_from_the_files_gets_every_event_then_a_clean_end()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_RING_CAPACITY"] = "1024" });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        long last = 0;
        for (int b = 0; b < 100; b++) (_, last) = await PublishBatchAsync(http, Batch(1000, i => MixedTypes[i % 4], 60));
        // The subscriber stops reading while the daemon serves it from the files (~20 MB to go), the
        // daemon is told to stop, then the subscriber reads on at full speed.
        await using var tap = await StreamTap.OpenAsync(d, "/events/stream?after_seq=0", startAfter: 0,
            receiveBuffer: 16 * 1024, readChunk: 16 * 1024, readDelayMs: 1);
        await tap.WaitForAsync(1000, TimeSpan.FromSeconds(10));
        tap.Paused = true;
        await Task.Delay(200);
        Assert.True(tap.Position < last - 50_000, $"the subscriber is already at {tap.Position}");
        d.Signal("TERM");
        await Task.Delay(300);
        tap.ReadDelayMs = 0;
        tap.Paused = false;
        DateTime until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!tap.Closed && DateTime.UtcNow < until) await Task.Delay(20);
        Assert.True(tap.Closed, $"the stream did not end (at seq {tap.Position})");
        Assert.Null(tap.Error);
        Assert.Equal(last, tap.Position); // every event up to the last one
        Assert.True(tap.EndedCleanly, "the stream was reset, not ended");
        Assert.Equal(0, await d.StopAsync(TimeSpan.FromSeconds(10)));
    }
}
