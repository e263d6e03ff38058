using AotEvents.Events;

namespace AotEvents.Storage.Tests;

/// <summary>The sparse seq → offset index: a resume is a binary search and a seek, not a scan.</summary>
public sealed class SegmentIndexTests
{
    [Fact]
    public void Seek_into_the_active_files_reads_one_stride_per_category_using_the_writers_index()
    {
        using var h = new WriterHarness(); // 64 MiB segments: everything stays in the active files
        h.Write(1, 40000, pad: 100, batch: 500);
        SegmentCatalog catalog = h.Writer.Segments;
        long total = catalog.TotalBytes;
        Assert.True(total > 10_000_000, total.ToString());
        foreach (var s in catalog.Segments(EventCategory.Console))
            Assert.True(s.Index.Count > 20, $"entries: {s.Index.Count}");

        using var replay = JsonlReplay.Open(h.Writer, 30000);
        Assert.Equal(ReplayRead.Envelope, replay.TryRead(out ReplayItem item));
        Assert.Equal(30001, item.Seq);
        // Every category seeks to one index entry and reads at most a stride plus a buffer from it.
        long perCategory = SegmentIndex.DefaultStride + 2 * JsonlReplay.DefaultBufferBytes;
        Assert.True(replay.BytesRead <= EventVocabulary.CategoryCount * perCategory,
            $"read {replay.BytesRead} of {total} bytes to find the start");
        Assert.Equal(0, catalog.IndexBytesScanned); // the writer built the index as it wrote
    }

    [Fact]
    public void Rotated_segments_persist_their_index_and_a_restart_seeks_without_scanning()
    {
        using var h = new WriterHarness(segmentBytes: 256 * 1024, indexStride: 4096);
        h.Write(1, 20000, batch: 200);
        var rotated = JsonlFiles.RotatedSegments(h.Dir.Path, EventCategory.Console);
        Assert.True(rotated.Count >= 2);
        foreach (var (_, path) in rotated) Assert.True(File.Exists(Path.ChangeExtension(path, ".idx")), path);

        h.Writer.Dispose();
        var catalog = SegmentCatalog.Open(h.Dir.Path, indexStride: 4096);
        JsonlSegment segment = catalog.Segments(EventCategory.Console)[1];
        Assert.False(segment.IsActive);
        long after = segment.FirstSeq + 200;
        using var replay = JsonlReplay.Open(catalog, after, catalog.HighestSeq, 1 << (int)EventCategory.Console);
        Assert.Equal(ReplayRead.Envelope, replay.TryRead(out ReplayItem item));
        Assert.True(item.Seq > after);
        Assert.Equal(Enumerable.Range((int)after + 1, 20000 - (int)after).Select(i => (long)i)
            .First(s => Envelopes.CategoryOf(s) == EventCategory.Console), item.Seq);
        Assert.Equal(0, catalog.IndexBytesScanned);
        Assert.True(replay.BytesRead <= 4096 + 2 * JsonlReplay.DefaultBufferBytes, replay.BytesRead.ToString());
    }

    [Fact]
    public void A_missing_or_stale_index_is_rebuilt_on_first_use_and_persisted()
    {
        var dir = new TempDir();
        try
        {
            using (var h = new WriterHarness(segmentBytes: 64 * 1024, indexStride: 2048, dir: dir))
                h.Write(1, 8000, batch: 100);

            string console1 = JsonlFiles.RotatedPath(dir.Path, EventCategory.Console, 1);
            string console2 = JsonlFiles.RotatedPath(dir.Path, EventCategory.Console, 2);
            string network1 = JsonlFiles.RotatedPath(dir.Path, EventCategory.Network, 1);
            File.Delete(Path.ChangeExtension(console1, ".idx"));                                  // missing
            File.Copy(Path.ChangeExtension(network1, ".idx"), Path.ChangeExtension(console2, ".idx"), true); // stale
            byte[] torn = File.ReadAllBytes(Path.ChangeExtension(network1, ".idx"));
            File.WriteAllBytes(Path.ChangeExtension(network1, ".idx"), torn[..^5]);             // torn

            var catalog = SegmentCatalog.Open(dir.Path, indexStride: 2048);
            foreach (var (category, number) in new[] { (EventCategory.Console, 1), (EventCategory.Console, 2), (EventCategory.Network, 1) })
            {
                JsonlSegment s = catalog.Segments(category).Single(x => x.Number == number);
                long after = (s.FirstSeq + s.LastSeq) / 2;
                using var replay = JsonlReplay.Open(catalog, after, catalog.HighestSeq, 1 << (int)category);
                var items = Replay.Envelopes(replay);
                var expected = Enumerable.Range((int)after + 1, 8000 - (int)after).Select(i => (long)i)
                    .Where(x => Envelopes.CategoryOf(x) == category);
                Assert.Equal(expected, items.Select(i => i.Seq));
                Assert.NotNull(SegmentIndex.TryLoad(Path.ChangeExtension(s.Path, ".idx"), new FileInfo(s.Path).Length, out long first, out long last));
                Assert.Equal((s.FirstSeq, s.LastSeq), (first, last));
            }
            Assert.True(catalog.IndexBytesScanned > 0);

            // Rebuilt indexes are used after the next start: no scan.
            var again = SegmentCatalog.Open(dir.Path, indexStride: 2048);
            JsonlSegment c1 = again.Segments(EventCategory.Console)[0];
            using (var replay = JsonlReplay.Open(again, c1.FirstSeq + 50, again.HighestSeq, 1 << (int)EventCategory.Console))
                Assert.Equal(ReplayRead.Envelope, replay.TryRead(out _));
            Assert.Equal(0, again.IndexBytesScanned);
        }
        finally
        {
            dir.Dispose();
        }
    }

    [Fact]
    public void The_active_file_of_a_restarted_daemon_is_scanned_once_then_the_writer_keeps_its_index()
    {
        using var h = new WriterHarness();
        h.Write(1, 20000, pad: 50, batch: 500);
        h.Reopen();
        SegmentCatalog catalog = h.Writer.Segments;
        using (var replay = JsonlReplay.Open(h.Writer, 10000))
        {
            Assert.Equal(ReplayRead.Envelope, replay.TryRead(out ReplayItem item));
            Assert.Equal(10001, item.Seq);
        }
        long scanned = catalog.IndexBytesScanned;
        Assert.True(scanned > 0);

        h.Write(20001, 30000, pad: 50, batch: 500);
        using (var replay = JsonlReplay.Open(h.Writer, 25000))
        {
            Assert.Equal(ReplayRead.Envelope, replay.TryRead(out ReplayItem item));
            Assert.Equal(25001, item.Seq);
            Assert.True(replay.BytesRead <= EventVocabulary.CategoryCount * (SegmentIndex.DefaultStride + 2 * JsonlReplay.DefaultBufferBytes));
        }
        Assert.Equal(scanned, catalog.IndexBytesScanned);
    }

    [Fact]
    public void Index_file_round_trips_and_rejects_corruption()
    {
        using var dir = new TempDir();
        var index = new SegmentIndex(stride: 100);
        var lines = new List<ReadOnlyMemory<byte>>();
        for (long seq = 10; seq < 200; seq += 3)
            lines.Add(Envelopes.Make(seq, EventCategory.Page).Line);
        index.Appended(lines, 0);
        long length = lines.Sum(l => (long)l.Length);
        Assert.Equal(length, index.FrontierOffset);
        Assert.Equal(199, index.FrontierSeq);
        Assert.Equal(0, index.FindStart(5));
        Assert.Equal(0, index.FindStart(10));

        string path = dir.File("page.1.idx");
        index.Save(path, length, 10, 199);
        var loaded = SegmentIndex.TryLoad(path, length, out long first, out long last);
        Assert.NotNull(loaded);
        Assert.Equal((10L, 199L), (first, last));
        Assert.Equal(index.Count, loaded!.Count);
        for (int i = 0; i < index.Count; i++) Assert.Equal(index[i], loaded[i]);
        for (long seq = 0; seq < 210; seq++) Assert.Equal(index.FindStart(seq), loaded.FindStart(seq));

        Assert.Null(SegmentIndex.TryLoad(path, length + 1, out _, out _)); // another segment length
        byte[] bytes = File.ReadAllBytes(path);
        bytes[45] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        Assert.Null(SegmentIndex.TryLoad(path, length, out _, out _)); // checksum
        Assert.Null(SegmentIndex.TryLoad(dir.File("none.idx"), length, out _, out _));
    }
}
