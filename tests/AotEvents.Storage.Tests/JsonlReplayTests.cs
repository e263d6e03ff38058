using AotEvents.Events;

namespace AotEvents.Storage.Tests;

/// <summary>SPEC §4/§5: replay from the JSONL files, merged by seq across categories and segments.</summary>
public sealed class JsonlReplayTests
{
    [Fact]
    public void Replay_merges_the_categories_in_seq_order_across_rotated_segments()
    {
        using var h = new WriterHarness(segmentBytes: 8 * 1024, indexStride: 1024);
        h.Write(1, 5000);
        for (int c = 0; c < EventVocabulary.CategoryCount; c++)
            Assert.True(JsonlFiles.RotatedSegments(h.Dir.Path, (EventCategory)c).Count >= 5, $"category {c} rotated");

        using (var replay = JsonlReplay.Open(h.Writer, 0))
        {
            var items = Replay.Envelopes(replay);
            Assert.Equal(5000, items.Count);
            for (int i = 0; i < items.Count; i++)
            {
                long seq = i + 1;
                Assert.Equal(seq, items[i].Seq);
                Assert.Equal(Envelopes.CategoryOf(seq), items[i].Category);
                Assert.Equal(Envelopes.Json(seq, items[i].Category), items[i].Json);
            }
            Assert.Equal(5000, replay.Position);
        }

        foreach (long after in new long[] { 1, 17, 2500, 4321, 4999 })
        {
            using var replay = JsonlReplay.Open(h.Writer, after);
            var items = Replay.Envelopes(replay);
            Assert.Equal(after + 1, items[0].Seq);
            Assert.Equal(5000 - after, items.Count);
            Assert.True(items.Select(i => i.Seq).SequenceEqual(Enumerable.Range((int)after + 1, (int)(5000 - after)).Select(i => (long)i)));
        }

        using (var end = JsonlReplay.Open(h.Writer, 5000))
            Assert.Equal(ReplayRead.End, end.TryRead(out _));
    }

    [Fact]
    public void Replay_never_reads_past_the_bound_and_refresh_goes_on()
    {
        using var h = new WriterHarness(segmentBytes: 4 * 1024);
        h.Write(1, 100);
        using var replay = JsonlReplay.Open(h.Writer, 0);
        Assert.Equal(100, Replay.Envelopes(replay).Count);

        h.Write(101, 300);
        Assert.Equal(ReplayRead.End, replay.TryRead(out _)); // bound still 100
        replay.Refresh();
        Assert.Equal(300, replay.BoundSeq);
        var more = Replay.Envelopes(replay);
        Assert.Equal(Enumerable.Range(101, 200).Select(i => (long)i), more.Select(i => i.Seq));

        // An explicit bound below what is written: stops there, no gap for what lies beyond.
        using var bounded = JsonlReplay.Open(h.Writer.Segments, 10, 50);
        var gaps = new List<(long, long)>();
        Assert.Equal(Enumerable.Range(11, 40).Select(i => (long)i), Replay.Envelopes(bounded, gaps).Select(i => i.Seq));
        Assert.Empty(gaps);
    }

    [Fact]
    public async Task Replay_follows_the_writer_through_rotations_while_it_writes()
    {
        using var h = new WriterHarness(segmentBytes: 4 * 1024, indexStride: 512);
        const int total = 15000;
        var writer = Task.Run(() => h.Write(1, total, batch: 7));
        using var replay = JsonlReplay.Open(h.Writer, 0);
        long expected = 1;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (expected <= total)
        {
            Assert.True(DateTime.UtcNow < deadline, $"stuck at {expected}");
            switch (replay.TryRead(out ReplayItem item))
            {
                case ReplayRead.Envelope:
                    Assert.Equal(expected, item.Seq);
                    Assert.Equal(expected, Envelopes.SeqOf(item.Json.Span));
                    expected++;
                    break;
                case ReplayRead.Gap:
                    Assert.Fail($"gap {item.GapFrom}..{item.GapTo} while nothing was deleted");
                    break;
                default:
                    if (h.Writer.WrittenSeq == replay.BoundSeq) Thread.Sleep(1);
                    replay.Refresh();
                    break;
            }
        }
        await writer;
    }

    [Fact]
    public void Replay_streams_through_small_buffers_instead_of_loading_files()
    {
        using var h = new WriterHarness(segmentBytes: 1024 * 1024);
        h.Write(1, 30000, pad: 300, batch: 500); // ~13 MB of JSONL
        long fileBytes = h.Writer.Segments.TotalBytes;
        Assert.True(fileBytes > 10_000_000, fileBytes.ToString());

        using (var warm = JsonlReplay.Open(h.Writer, 29990)) Replay.Envelopes(warm);
        long before = GC.GetAllocatedBytesForCurrentThread();
        long count = 0;
        using (var replay = JsonlReplay.Open(h.Writer, 0))
        {
            while (replay.TryRead(out ReplayItem item) == ReplayRead.Envelope)
            {
                count += item.Json.Length > 0 ? 1 : 0;
            }
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(30000, count);
        Assert.True(allocated < 1024 * 1024, $"replaying {fileBytes} bytes allocated {allocated} bytes");
    }

    [Fact]
    public void Replay_reports_one_gap_for_a_range_deleted_from_a_single_category()
    {
        using var h = new WriterHarness(segmentBytes: 8 * 1024);
        h.Write(1, 2000, _ => EventCategory.Console);
        var segments = h.Writer.Segments.Segments(EventCategory.Console);
        Assert.True(segments.Count > 6);
        JsonlSegment first = segments[0], second = segments[1], middle = segments[4];
        h.Writer.Segments.Delete(first);
        h.Writer.Segments.Delete(second);
        h.Writer.Segments.Delete(middle);
        Assert.Equal(second.LastSeq + 1, h.Writer.LowestRetainedSeq);

        var gaps = new List<(long From, long To)>();
        using (var replay = JsonlReplay.Open(h.Writer, 0))
        {
            var items = Replay.Envelopes(replay, gaps);
            Assert.Equal([(1L, second.LastSeq), (middle.FirstSeq, middle.LastSeq)], gaps);
            var expected = Enumerable.Range(1, 2000).Select(i => (long)i)
                .Where(s => s > second.LastSeq && (s < middle.FirstSeq || s > middle.LastSeq));
            Assert.Equal(expected, items.Select(i => i.Seq));
        }

        gaps.Clear();
        using (var replay = JsonlReplay.Open(h.Writer, 5))
        {
            var items = Replay.Envelopes(replay, gaps);
            Assert.Equal((6L, second.LastSeq), gaps[0]);
            Assert.Equal(second.LastSeq + 1, items[0].Seq);
        }

        gaps.Clear();
        using (var replay = JsonlReplay.Open(h.Writer, second.LastSeq))
        {
            Assert.Equal(ReplayRead.Envelope, replay.TryRead(out ReplayItem item));
            Assert.Equal(second.LastSeq + 1, item.Seq);
        }
    }

    [Fact]
    public void Replay_reports_exactly_the_missing_ranges_when_interleaved_segments_are_deleted()
    {
        using var h = new WriterHarness(segmentBytes: 8 * 1024);
        h.Write(1, 3000);
        var catalog = h.Writer.Segments;
        catalog.Delete(catalog.Segments(EventCategory.Console)[0]);
        catalog.Delete(catalog.Segments(EventCategory.Network)[1]);
        catalog.Delete(catalog.Segments(EventCategory.Page)[2]);

        var present = new SortedSet<long>();
        for (int c = 0; c < EventVocabulary.CategoryCount; c++)
        {
            foreach (string path in JsonlFiles.AllSegments(h.Dir.Path, (EventCategory)c))
            {
                foreach (string line in File.ReadAllLines(path)) present.Add(Envelopes.SeqOf(System.Text.Encoding.UTF8.GetBytes(line)));
            }
        }
        Assert.True(present.Count < 3000);

        var gaps = new List<(long From, long To)>();
        using var replay = JsonlReplay.Open(h.Writer, 0);
        var items = Replay.Envelopes(replay, gaps);
        Assert.Equal(present, items.Select(i => i.Seq));

        // Gaps + envelopes cover 1..3000 exactly once, and each gap is a whole missing range.
        var covered = new List<long>(items.Select(i => i.Seq));
        foreach (var (from, to) in gaps)
        {
            Assert.True(from <= to);
            for (long s = from; s <= to; s++) covered.Add(s);
            Assert.DoesNotContain(from - 1, gaps.Select(g => g.To)); // not split in two
        }
        covered.Sort();
        Assert.Equal(Enumerable.Range(1, 3000).Select(i => (long)i), covered);
        Assert.Equal(3000, items.Count + gaps.Sum(g => g.To - g.From + 1));
    }

    [Fact]
    public void A_category_mask_reads_only_those_files_and_reports_no_gaps()
    {
        using var h = new WriterHarness(segmentBytes: 8 * 1024);
        h.Write(1, 2000);
        int mask = (1 << (int)EventCategory.Network) | (1 << (int)EventCategory.System);
        using var replay = JsonlReplay.Open(h.Writer.Segments, 100, h.Writer.WrittenSeq, mask);
        var gaps = new List<(long, long)>();
        var items = Replay.Envelopes(replay, gaps);
        var expected = Enumerable.Range(101, 1900).Select(i => (long)i)
            .Where(s => Envelopes.CategoryOf(s) is EventCategory.Network or EventCategory.System);
        Assert.Equal(expected, items.Select(i => i.Seq));
        Assert.Empty(gaps);
    }
}
