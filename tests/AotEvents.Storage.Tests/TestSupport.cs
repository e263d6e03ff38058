using System.Text;
using AotEvents.Events;
using AotEvents.Pipeline;
using AotEvents.Storage;

namespace AotEvents.Storage.Tests;

internal static class Envelopes
{
    public static readonly CaptureSession Session = new("s1", DateTimeOffset.UnixEpoch, EventVocabulary.AllCategoriesMask,
        DetailLevel.Standard, 0);

    /// <summary>The category of seq n in the interleaved test streams (uneven, so files differ in size).</summary>
    public static EventCategory CategoryOf(long seq) => (EventCategory)(seq * 7919 % 11 % EventVocabulary.CategoryCount);

    public static string Json(long seq, EventCategory category, CaptureSession? session = null, long ts = 0, int pad = 0) =>
        $"{{\"capture_session_id\":\"{(session ?? Session).Id}\",\"seq\":{seq},\"event\":{{\"ts\":{(ts == 0 ? seq * 1000 : ts)}," +
        $"\"type\":\"t.{seq}\",\"category\":\"{EventVocabulary.Name(category)}\",\"detail_level\":\"standard\"," +
        $"\"source\":{{\"kind\":\"kernel_api\"}},\"data\":\"{new string('x', pad + (int)(seq % 13))}\"}}}}";

    public static Envelope Make(long seq, EventCategory category, CaptureSession? session = null, int pad = 0) =>
        new(seq, Encoding.UTF8.GetBytes(Json(seq, category, session, 0, pad) + "\n"), category, SourceKind.KernelApi, 0, 0,
            session ?? Session);

    public static long SeqOf(ReadOnlySpan<byte> json) => JsonlRecovery.ReadSeqFast(json);

    public static string Str(ReadOnlyMemory<byte> bytes) => Encoding.UTF8.GetString(bytes.Span);
}

/// <summary>A <see cref="JsonlWriter"/> over a temp dir, fed hand-made envelopes.</summary>
internal sealed class WriterHarness : IDisposable
{
    private readonly bool _ownsDir;
    private readonly Func<string, JsonlWriterOptions> _options;

    public WriterHarness(long segmentBytes = 64L * 1024 * 1024, long maxDiskBytes = long.MaxValue,
        Func<long>? shippedSeq = null, int indexStride = SegmentIndex.DefaultStride, TempDir? dir = null)
    {
        _ownsDir = dir is null;
        Dir = dir ?? new TempDir();
        _options = d => new JsonlWriterOptions
        {
            DataDir = d,
            SegmentBytes = segmentBytes,
            MaxDiskBytes = maxDiskBytes,
            ShippedSeq = shippedSeq,
            IndexStride = indexStride,
            FsyncInterval = TimeSpan.FromSeconds(1),
        };
        Writer = new JsonlWriter(_options(Dir.Path), JsonlRecovery.RecoverLastSeq(Dir.Path, AddLog), AddLog);
    }

    public TempDir Dir { get; }
    public JsonlWriter Writer { get; private set; }
    public List<string> Log { get; } = [];

    private void AddLog(string message)
    {
        lock (Log) Log.Add(message);
    }

    public int LogCount(string contains)
    {
        lock (Log) return Log.Count(l => l.Contains(contains, StringComparison.Ordinal));
    }

    /// <summary>Writes seqs first..last (category from <paramref name="category"/> or interleaved), in batches.</summary>
    public void Write(long first, long last, Func<long, EventCategory>? category = null, int pad = 0, int batch = 50)
    {
        for (long seq = first; seq <= last; seq++)
        {
            Writer.Enqueue(Envelopes.Make(seq, (category ?? Envelopes.CategoryOf)(seq), pad: pad));
            // Wait for the write, not for an fsync (an fsync per small batch makes tests slow).
            if ((seq - first + 1) % batch == 0) Writer.WaitWrittenAsync(seq).Wait();
        }
        Writer.WaitWrittenAsync(last).Wait();
        Assert.Equal(last, Writer.WrittenSeq);
    }

    public void Reopen()
    {
        Writer.Dispose();
        Writer = new JsonlWriter(_options(Dir.Path), JsonlRecovery.RecoverLastSeq(Dir.Path, AddLog), AddLog);
    }

    public void Dispose()
    {
        Writer.Dispose();
        if (_ownsDir) Dir.Dispose();
    }
}

internal static class Replay
{
    /// <summary>Everything a replay yields, gaps as (from, to, -count).</summary>
    public static List<(long Seq, EventCategory Category, string Json)> Envelopes(JsonlReplay replay,
        List<(long From, long To)>? gaps = null)
    {
        var items = new List<(long, EventCategory, string)>();
        while (true)
        {
            switch (replay.TryRead(out ReplayItem item))
            {
                case ReplayRead.Envelope:
                    items.Add((item.Seq, item.Category, Tests.Envelopes.Str(item.Json)));
                    break;
                case ReplayRead.Gap:
                    Assert.NotNull(gaps);
                    gaps!.Add((item.GapFrom, item.GapTo));
                    break;
                default:
                    return items;
            }
        }
    }
}
