using System.Text;
using AotEvents.Events;
using AotEvents.Pipeline;

namespace AotEvents.Storage.Tests;

/// <summary>
/// SPEC §4 "replay never silently loses events": a reader that falls behind a tiny ring catches up
/// from the files and rejoins the ring with no gap and no duplicate.
/// </summary>
public sealed class EnvelopeCursorTests
{
    private static readonly string[] Types =
        ["console.log", "network.request", "page.load", "interaction.click", "liveview.frame", "captcha.seen", "custom.thing"];

    private static EventPipeline OpenPipeline(string dir, int ringCapacity = 16, long segmentBytes = 64 * 1024,
        long maxDiskBytes = 1L << 40)
    {
        var pipeline = EventPipeline.Open(new EventPipelineOptions
        {
            DataDir = dir,
            RingCapacity = ringCapacity,
            SegmentBytes = segmentBytes,
            MaxDiskBytes = maxDiskBytes,
            FsyncInterval = TimeSpan.FromMilliseconds(20),
        }, _ => { });
        Assert.Equal(201, pipeline.StartSession(default).Status);
        return pipeline;
    }

    private static void Publish(EventPipeline pipeline, long count, Func<long, string>? type = null)
    {
        for (long i = 1; i <= count; i++)
        {
            string t = type?.Invoke(i) ?? Types[(int)(i * 31 % Types.Length)];
            var outcome = pipeline.Publish(Encoding.UTF8.GetBytes($"{{\"type\":\"{t}\",\"data\":{{\"i\":{i}}}}}"));
            Assert.True(outcome.Succeeded, outcome.Message);
        }
    }

    /// <summary>Reads with <see cref="EnvelopeCursor.TryRead"/> until <paramref name="last"/>, asserting strict order.</summary>
    private static async Task<(long FromRing, long FromFiles)> ReadAllAsync(EnvelopeCursor cursor, long first, long last,
        int slowEvery = 0)
    {
        long expected = first, fromRing = 0, fromFiles = 0;
        var deadline = DateTime.UtcNow.AddSeconds(40);
        while (expected <= last)
        {
            Assert.True(DateTime.UtcNow < deadline, $"stuck at {expected}");
            switch (cursor.TryRead(out CursorItem item))
            {
                case CursorRead.Envelope:
                    Assert.Equal(expected, item.Seq);
                    Assert.Equal(expected, JsonlRecovery.ReadSeqFast(item.Json.Span));
                    if (item.FromRing) fromRing++;
                    else fromFiles++;
                    expected++;
                    if (slowEvery > 0 && expected % slowEvery == 0) await Task.Delay(2);
                    break;
                case CursorRead.Gap:
                    Assert.Fail($"gap {item.GapFrom}..{item.GapTo} while nothing was deleted");
                    break;
                default: // Idle or Pending
                    await cursor.WaitAsync().WaitAsync(TimeSpan.FromSeconds(1)).ContinueWith(_ => { });
                    break;
            }
        }
        Assert.Equal(last, cursor.Position);
        return (fromRing, fromFiles);
    }

    [Fact]
    public async Task A_reader_behind_a_16_slot_ring_gets_1_to_20000_in_order_while_publishing_goes_on()
    {
        using var dir = new TempDir();
        using var pipeline = OpenPipeline(dir.Path);
        using var cursor = new EnvelopeCursor(pipeline, 0);
        var publisher = Task.Run(() => Publish(pipeline, 20000));

        var (fromRing, fromFiles) = await ReadAllAsync(cursor, 1, 20000, slowEvery: 500);
        await publisher;
        Assert.True(fromFiles > 0, "the reader never fell behind the ring");
        Assert.True(fromRing > 0, "the reader never rejoined the ring");
        Assert.Equal(fromFiles, cursor.ReplayedCount);
        Assert.True(JsonlFiles.RotatedSegments(dir.Path, EventCategory.Console).Count > 0);

        // A reader starting after everything was published replays it all from the files.
        using var late = new EnvelopeCursor(pipeline, 0);
        var (ring2, files2) = await ReadAllAsync(late, 1, 20000);
        Assert.True(files2 >= 20000 - 16);
        Assert.Equal(20000, ring2 + files2);
    }

    [Fact]
    public async Task Catch_up_waits_for_a_lagging_writer_instead_of_skipping()
    {
        using var dir = new TempDir();
        using var pipeline = OpenPipeline(dir.Path, ringCapacity: 4);
        // Hold the writer: while it is blocked in its Written handler nothing more is written, so
        // events leave the 4-slot ring before they reach the files.
        var gate = new ManualResetEventSlim(true); // not disposed: the writer thread may still look at it
        pipeline.Writer.Written += _ => gate.Wait();
        Publish(pipeline, 10);
        await pipeline.Writer.FlushAsync();
        gate.Reset();
        Publish(pipeline, 1); // seq 11: written, then the writer blocks in the handler
        while (pipeline.Writer.WrittenSeq < 11) await Task.Delay(1);
        Publish(pipeline, 30); // 12..41: queued, only 38..41 in the ring

        using var cursor = new EnvelopeCursor(pipeline, 0);
        for (long seq = 1; seq <= 11; seq++)
        {
            Assert.Equal(CursorRead.Envelope, cursor.TryRead(out CursorItem item));
            Assert.Equal(seq, item.Seq);
        }
        Assert.Equal(CursorRead.Pending, cursor.TryRead(out _)); // 12 is in neither ring nor files yet
        Task wait = cursor.WaitAsync();
        Assert.False(wait.IsCompleted);
        gate.Set();
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
        await ReadAllAsync(cursor, 12, 41);
    }

    [Fact]
    public async Task Starting_at_zero_begins_at_the_oldest_retained_event_without_a_dropped_report()
    {
        using var dir = new TempDir();
        using var pipeline = OpenPipeline(dir.Path, segmentBytes: 16 * 1024, maxDiskBytes: 64 * 1024);
        for (int i = 0; i < 50; i++)
        {
            Publish(pipeline, 100, _ => "console.log"); // one category: what is retained is contiguous
            await pipeline.Writer.WaitWrittenAsync(pipeline.LastSeq); // segments near SegmentBytes
        }
        Assert.True(pipeline.Writer.DeletedSegments > 0);

        long oldest = EnvelopeCursor.OldestRetainedSeq(pipeline.Ring, pipeline.Writer);
        Assert.True(oldest > 1);
        Assert.Equal(pipeline.Writer.LowestRetainedSeq, oldest);
        using var cursor = new EnvelopeCursor(pipeline, oldest - 1);
        await ReadAllAsync(cursor, oldest, 5000);

        // Resuming from an older position reports the deleted range once, then goes on.
        using var old = new EnvelopeCursor(pipeline, 10);
        Assert.Equal(CursorRead.Gap, old.TryRead(out CursorItem gap));
        Assert.Equal((11L, oldest - 1, oldest - 11), (gap.GapFrom, gap.GapTo, gap.GapCount));
        await ReadAllAsync(old, oldest, 5000);
    }
}
