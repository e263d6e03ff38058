using System.Text.Json;
using AotEvents.Archive;
using AotEvents.Events;

namespace AotEvents.Storage.Tests;

/// <summary>SPEC §7 without S2: <c>GET /telemetry/events</c> from the JSONL files.</summary>
public sealed class JsonlArchiveTests
{
    private static readonly CaptureSession SessionA = new("aaaaaaaa-0000-0000-0000-000000000001", DateTimeOffset.UnixEpoch,
        EventVocabulary.AllCategoriesMask, DetailLevel.Standard, 0);

    private static readonly CaptureSession SessionB = new("bbbbbbbb-0000-0000-0000-000000000002", DateTimeOffset.UnixEpoch,
        EventVocabulary.AllCategoriesMask, DetailLevel.Standard, 1500);

    /// <summary>Seqs 1..1500 in session A, 1501..3000 in session B, interleaved categories, rotated files.</summary>
    private static WriterHarness Archive()
    {
        var h = new WriterHarness(segmentBytes: 32 * 1024, indexStride: 4096);
        for (long seq = 1; seq <= 3000; seq++)
        {
            h.Writer.Enqueue(Envelopes.Make(seq, Envelopes.CategoryOf(seq), seq <= 1500 ? SessionA : SessionB));
            if (seq % 100 == 0) h.Writer.WaitWrittenAsync(seq).Wait();
        }
        h.Writer.WaitWrittenAsync(3000).Wait();
        return h;
    }

    private static List<long> PageThrough(JsonlArchive archive, ArchiveQuery first, out int pages)
    {
        var seqs = new List<long>();
        ArchiveQuery query = first;
        pages = 0;
        while (true)
        {
            ArchivePage page = archive.ReadAsync(query, CancellationToken.None).Result;
            pages++;
            Assert.True(page.Envelopes.Count <= query.Limit);
            foreach (var json in page.Envelopes)
            {
                using var doc = JsonDocument.Parse(json);
                seqs.Add(doc.RootElement.GetProperty("seq").GetInt64());
            }
            if (!page.HasMore)
            {
                Assert.Null(page.NextOffset);
                return seqs;
            }
            Assert.NotNull(page.NextOffset);
            Assert.True(page.Envelopes.Count == 0 || page.NextOffset > seqs[^1]);
            query = new ArchiveQuery
            {
                Offset = page.NextOffset,
                UntilMicros = first.UntilMicros,
                CategoryMask = first.CategoryMask,
                CaptureSessionId = first.CaptureSessionId,
                Limit = first.Limit,
            };
            Assert.True(pages < 10000);
        }
    }

    [Fact]
    public void Paging_with_limit_7_returns_every_event_of_the_default_session_once_in_order()
    {
        using var h = Archive();
        var archive = new JsonlArchive(h.Writer, () => SessionB.Id);
        var seqs = PageThrough(archive, new ArchiveQuery { Limit = 7 }, out int pages);
        Assert.Equal(Enumerable.Range(1501, 1500).Select(i => (long)i), seqs);
        Assert.Equal((1500 + 6) / 7, pages); // HasMore is exact: no empty last page

        // No default session at all: every event.
        var all = PageThrough(new JsonlArchive(h.Writer, () => null), new ArchiveQuery { Limit = 7 }, out _);
        Assert.Equal(Enumerable.Range(1, 3000).Select(i => (long)i), all);
    }

    [Fact]
    public void Filters_on_session_category_and_time_window_combine()
    {
        using var h = Archive();
        var archive = new JsonlArchive(h.Writer, () => SessionB.Id);
        int mask = (1 << (int)EventCategory.Console) | (1 << (int)EventCategory.Page);
        var query = new ArchiveQuery
        {
            CaptureSessionId = SessionA.Id,
            CategoryMask = mask,
            SinceMicros = 200_000,   // ts = seq * 1000
            UntilMicros = 1_200_000, // exclusive
            Limit = 7,
        };
        var seqs = PageThrough(archive, query, out _);
        var expected = Enumerable.Range(200, 1000).Select(i => (long)i)
            .Where(s => Envelopes.CategoryOf(s) is EventCategory.Console or EventCategory.Page);
        Assert.Equal(expected, seqs);
    }

    [Fact]
    public void Offset_is_an_inclusive_seq_found_through_the_index_and_reads_change_nothing()
    {
        using var h = Archive();
        var before = Directory.EnumerateFiles(h.Dir.Path).OrderBy(f => f, StringComparer.Ordinal)
            .Select(f => (f, new FileInfo(f).Length, File.GetLastWriteTimeUtc(f))).ToList();
        var archive = new JsonlArchive(h.Writer, () => null);

        ArchivePage page = archive.Read(new ArchiveQuery { Offset = 2345, Limit = 3 });
        Assert.Equal(3, page.Envelopes.Count);
        Assert.Equal(Envelopes.Json(2345, Envelopes.CategoryOf(2345), SessionB), Envelopes.Str(page.Envelopes[0]));
        Assert.True(page.HasMore);
        Assert.Equal(2348, page.NextOffset);
        Assert.Equal(0, h.Writer.Segments.IndexBytesScanned);

        Assert.Empty(archive.Read(new ArchiveQuery { Offset = 3001 }).Envelopes);
        ArchivePage last = archive.Read(new ArchiveQuery { Offset = 3000 });
        Assert.Single(last.Envelopes);
        Assert.False(last.HasMore);
        Assert.Empty(archive.Read(new ArchiveQuery { CaptureSessionId = "nope" }).Envelopes);

        var after = Directory.EnumerateFiles(h.Dir.Path).OrderBy(f => f, StringComparer.Ordinal)
            .Select(f => (f, new FileInfo(f).Length, File.GetLastWriteTimeUtc(f))).ToList();
        Assert.Equal(before, after);
    }
}
