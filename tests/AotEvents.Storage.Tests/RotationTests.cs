using AotEvents.Events;

namespace AotEvents.Storage.Tests;

/// <summary>SPEC §5 size-based rotation: <c>&lt;category&gt;.log</c> → <c>&lt;category&gt;.&lt;n&gt;.log</c>.</summary>
public sealed class RotationTests
{
    [Fact]
    public void A_burst_is_written_in_slices_so_segments_stay_near_SegmentBytes()
    {
        const int segment = 16 * 1024;
        using var h = new WriterHarness(segmentBytes: segment);
        h.Write(1, 3000, _ => EventCategory.Console, batch: 3000); // enqueued at once: large writer batches

        var rotated = JsonlFiles.RotatedSegments(h.Dir.Path, EventCategory.Console);
        Assert.True(rotated.Count >= 20, rotated.Count.ToString());
        Assert.Equal(Enumerable.Range(1, rotated.Count), rotated.Select(r => r.Number)); // larger n = newer
        foreach (var (_, path) in rotated)
            Assert.InRange(new FileInfo(path).Length, segment, segment + 4096);

        using var replay = JsonlReplay.Open(h.Writer, 0);
        Assert.Equal(Enumerable.Range(1, 3000).Select(i => (long)i), Replay.Envelopes(replay).Select(i => i.Seq));
    }

    [Fact]
    public void Numbers_keep_growing_after_a_restart_and_after_retention()
    {
        using var h = new WriterHarness(segmentBytes: 8 * 1024, maxDiskBytes: 40 * 1024);
        h.Write(1, 1000, _ => EventCategory.Captcha, batch: 10);
        int before = JsonlFiles.RotatedSegments(h.Dir.Path, EventCategory.Captcha)[^1].Number;
        h.Reopen();
        h.Write(1001, 2000, _ => EventCategory.Captcha, batch: 10);
        var after = JsonlFiles.RotatedSegments(h.Dir.Path, EventCategory.Captcha);
        Assert.True(after[^1].Number > before);
        // Oldest first by number is oldest first by seq.
        var firsts = after.Select(r => Envelopes.SeqOf(System.Text.Encoding.UTF8.GetBytes(File.ReadLines(r.Path).First()))).ToList();
        Assert.Equal(firsts.Order(), firsts);

        using var replay = JsonlReplay.Open(h.Writer, h.Writer.LowestRetainedSeq - 1);
        var gaps = new List<(long, long)>();
        var items = Replay.Envelopes(replay, gaps);
        Assert.Empty(gaps);
        Assert.Equal(Enumerable.Range((int)firsts[0], 2001 - (int)firsts[0]).Select(i => (long)i), items.Select(i => i.Seq));
    }
}
