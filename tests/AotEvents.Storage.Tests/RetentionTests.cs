using AotEvents.Events;

namespace AotEvents.Storage.Tests;

/// <summary>SPEC §5 disk cap: oldest rotated files go first, never an active file, never an unshipped one.</summary>
public sealed class RetentionTests
{
    private static long LogBytesOnDisk(string dir) =>
        Directory.EnumerateFiles(dir, "*.log").Sum(f => new FileInfo(f).Length);

    [Fact]
    public void Over_the_cap_the_oldest_rotated_segments_are_deleted_and_the_active_file_never()
    {
        const long cap = 64 * 1024;
        using var h = new WriterHarness(segmentBytes: 16 * 1024, maxDiskBytes: cap);
        h.Write(1, 3000, _ => EventCategory.Console, batch: 10);
        h.Write(3001, 3001, _ => EventCategory.Console); // the last batch may have rotated the active file

        var rotated = JsonlFiles.RotatedSegments(h.Dir.Path, EventCategory.Console);
        Assert.True(h.Writer.DeletedSegments > 0);
        Assert.True(File.Exists(JsonlFiles.ActivePath(h.Dir.Path, EventCategory.Console)));
        Assert.True(h.Writer.Segments.TotalBytes <= cap, h.Writer.Segments.TotalBytes.ToString());
        Assert.Equal(LogBytesOnDisk(h.Dir.Path), h.Writer.Segments.TotalBytes);
        // What is left is the newest rotated files (contiguous numbers up to the last), with their indexes.
        int newest = rotated[^1].Number;
        Assert.Equal(Enumerable.Range(newest - rotated.Count + 1, rotated.Count), rotated.Select(r => r.Number));
        foreach (var (_, path) in rotated) Assert.True(File.Exists(Path.ChangeExtension(path, ".idx")));
        Assert.Equal(rotated.Count, Directory.EnumerateFiles(h.Dir.Path, "*.idx").Count());

        long lowest = h.Writer.LowestRetainedSeq;
        string firstLine = File.ReadLines(rotated[0].Path).First();
        Assert.Equal(Envelopes.SeqOf(System.Text.Encoding.UTF8.GetBytes(firstLine)), lowest);
        Assert.True(lowest > 1);
    }

    [Fact]
    public void The_active_file_is_kept_even_when_it_alone_is_over_the_cap()
    {
        const long cap = 1024;
        using var h = new WriterHarness(segmentBytes: 32 * 1024, maxDiskBytes: cap);
        h.Write(1, 1000, _ => EventCategory.Page, batch: 10);
        h.Write(1001, 1010, _ => EventCategory.Page); // after a possible rotation, the active file is over the cap again
        Assert.True(h.Writer.DeletedSegments > 0);
        Assert.Empty(JsonlFiles.RotatedSegments(h.Dir.Path, EventCategory.Page));
        long active = new FileInfo(JsonlFiles.ActivePath(h.Dir.Path, EventCategory.Page)).Length;
        Assert.True(active > cap);
        Assert.Equal(active, h.Writer.Segments.TotalBytes);
        Assert.Equal(1, h.LogCount("no rotated file left to delete"));
    }

    [Fact]
    public void Across_categories_the_segment_with_the_lowest_first_seq_goes_first()
    {
        const long cap = 96 * 1024;
        using var h = new WriterHarness(segmentBytes: 8 * 1024, maxDiskBytes: cap);
        var deletedFirstSeqs = new List<long>();
        long keptLowest = long.MaxValue;
        for (long first = 1; first <= 6000; first += 200)
        {
            var before = Enumerable.Range(0, EventVocabulary.CategoryCount)
                .SelectMany(c => h.Writer.Segments.Segments((EventCategory)c)).Where(s => !s.IsActive).ToList();
            h.Write(first, first + 199);
            var after = Enumerable.Range(0, EventVocabulary.CategoryCount)
                .SelectMany(c => h.Writer.Segments.Segments((EventCategory)c)).Where(s => !s.IsActive).ToList();
            foreach (var gone in before.Where(b => !after.Contains(b)))
            {
                Assert.True(gone.IsDeleted);
                deletedFirstSeqs.Add(gone.FirstSeq);
                // Every rotated segment still there started later than the deleted one.
                Assert.All(after, s => Assert.True(s.FirstSeq > gone.FirstSeq, $"{s.Path} {s.FirstSeq} kept, {gone.FirstSeq} deleted"));
            }
            if (after.Count > 0) keptLowest = after.Min(s => s.FirstSeq);
            Assert.True(h.Writer.Segments.TotalBytes <= cap);
        }
        Assert.True(deletedFirstSeqs.Count > 5);
        Assert.True(deletedFirstSeqs.Max() < keptLowest);
    }

    [Fact]
    public void Segments_S2_has_not_shipped_are_kept_over_the_cap_and_logged_once()
    {
        long shipped = 0;
        const long cap = 48 * 1024;
        using var h = new WriterHarness(segmentBytes: 16 * 1024, maxDiskBytes: cap, shippedSeq: () => Volatile.Read(ref shipped));
        h.Write(1, 2000, _ => EventCategory.Network, batch: 20);

        Assert.Equal(0, h.Writer.DeletedSegments);
        Assert.True(h.Writer.Segments.TotalBytes > 4 * cap);
        Assert.Equal(1, h.LogCount("S2 has not shipped"));
        Assert.Equal(1, h.Writer.LowestRetainedSeq);

        // S2 caught up to 1000: the segments holding only seqs ≤ 1000 go, the rest stay.
        Volatile.Write(ref shipped, 1000);
        Thread.Sleep(1100); // a blocked cap is looked at again at most once a second
        h.Write(2001, 2010, _ => EventCategory.Network);
        var kept = h.Writer.Segments.Segments(EventCategory.Network).Where(s => !s.IsActive).ToList();
        Assert.True(h.Writer.DeletedSegments > 0);
        Assert.All(kept, s => Assert.True(s.LastSeq > 1000, $"{s.Path} ends at {s.LastSeq}"));
        Assert.True(h.Writer.LowestRetainedSeq <= 1001, h.Writer.LowestRetainedSeq.ToString());
        Assert.True(h.Writer.Segments.TotalBytes > cap);

        // S2 no longer configured: the cap applies fully.
        h.Writer.ShippedSeq = null;
        Thread.Sleep(1100);
        h.Write(2011, 2020, _ => EventCategory.Network);
        Assert.True(h.Writer.Segments.TotalBytes <= cap);
        Assert.Equal(LogBytesOnDisk(h.Dir.Path), h.Writer.Segments.TotalBytes);
    }

    [Fact]
    public void Policy_deletes_oldest_first_and_skips_unshipped_ones()
    {
        RetentionCandidate[] candidates =
        [
            new(1, 100, 10),
            new(5, 50, 10),
            new(20, 300, 10),
            new(60, 400, 10),
        ];
        var plan = RetentionPolicy.Select(candidates, totalBytes: 100, maxBytes: 75, shippedSeq: null);
        Assert.Equal([0, 1, 2], plan.Delete);
        Assert.Equal(70, plan.BytesAfter);

        plan = RetentionPolicy.Select(candidates, 100, 75, shippedSeq: 60);
        Assert.Equal([1], plan.Delete);
        Assert.Equal(3, plan.KeptUnshipped);
        Assert.Equal(90, plan.BytesAfter);

        plan = RetentionPolicy.Select(candidates, 70, 75, shippedSeq: null);
        Assert.Empty(plan.Delete);
    }
}
