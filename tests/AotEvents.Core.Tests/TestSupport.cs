using System.Text;
using System.Text.Json;
using AotEvents.Events;
using AotEvents.Pipeline;
using AotEvents.Storage;

namespace AotEvents.Core.Tests;

internal static class Text
{
    public static byte[] U8(string s) => Encoding.UTF8.GetBytes(s);

    public static string Str(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);
}

/// <summary>An <see cref="EventPipeline"/> over a temp dir, with a fixed clock and a captured log.</summary>
internal sealed class Harness : IDisposable
{
    public const long Now = 1_700_000_000_123_456;

    private readonly TempDir _dir;
    private readonly bool _ownsDir;
    private readonly Func<string, EventPipelineOptions> _options;

    public Harness(string? startBody = "", int ringCapacity = 8192, long ringMaxBytes = 16 * 1024 * 1024,
        long segmentBytes = 64L * 1024 * 1024, TimeSpan? fsyncInterval = null, TempDir? dir = null)
    {
        _ownsDir = dir is null;
        _dir = dir ?? new TempDir();
        _options = d => new EventPipelineOptions
        {
            DataDir = d,
            RingCapacity = ringCapacity,
            RingMaxBytes = ringMaxBytes,
            SegmentBytes = segmentBytes,
            FsyncInterval = fsyncInterval ?? TimeSpan.FromMilliseconds(200),
            ClockMicros = () => Now,
        };
        Pipeline = EventPipeline.Open(_options(_dir.Path), AddLog);
        if (startBody is not null)
        {
            var started = Pipeline.StartSession(Text.U8(startBody));
            Assert.Equal(201, started.Status);
        }
    }

    public EventPipeline Pipeline { get; private set; }

    public string Dir => _dir.Path;

    public List<string> Log { get; } = [];

    public CaptureSession Session => Pipeline.ActiveSession ?? throw new InvalidOperationException("no session");

    private void AddLog(string message)
    {
        lock (Log) Log.Add(message);
    }

    public PublishOutcome Publish(string json) => Pipeline.Publish(Text.U8(json));

    /// <summary>Publishes and returns the envelope JSON (asserting success).</summary>
    public string PublishOk(string json)
    {
        PublishOutcome outcome = Publish(json);
        Assert.True(outcome.Succeeded, $"{outcome.Status} {outcome.Message}");
        return Text.Str(outcome.Envelope.Json);
    }

    /// <summary>Publishes and returns the <c>event</c> member as JSON text.</summary>
    public string PublishEvent(string json)
    {
        using var doc = JsonDocument.Parse(PublishOk(json));
        return doc.RootElement.GetProperty("event").GetRawText();
    }

    /// <summary>Publishes expecting a refusal; asserts the status and that no seq was used.</summary>
    public string Refused(string json, int status) => Refused(Text.U8(json), status);

    public string Refused(byte[] json, int status)
    {
        long before = Pipeline.LastSeq;
        long ringBefore = Pipeline.Ring.LastSeq;
        PublishOutcome outcome = Pipeline.Publish(json);
        Assert.Equal(status, outcome.Status);
        Assert.False(outcome.Succeeded);
        Assert.NotNull(outcome.Message);
        Assert.Equal(before, Pipeline.LastSeq);
        Assert.Equal(ringBefore, Pipeline.Ring.LastSeq);
        return outcome.Message!;
    }

    /// <summary>Closes the pipeline and opens a new one over the same directory (a daemon restart).</summary>
    public void Reopen()
    {
        Pipeline.Dispose();
        Pipeline = EventPipeline.Open(_options(_dir.Path), AddLog);
    }

    /// <summary>Every JSONL line of a category, segments oldest first.</summary>
    public List<string> Lines(EventCategory category) => Files.Lines(Dir, category);

    public void Dispose()
    {
        Pipeline.Dispose();
        if (_ownsDir) _dir.Dispose();
    }
}

internal static class Files
{
    public static List<string> Lines(string dir, EventCategory category)
    {
        var lines = new List<string>();
        foreach (string path in JsonlFiles.AllSegments(dir, category))
        {
            string content = File.ReadAllText(path);
            if (content.Length == 0) continue;
            Assert.EndsWith("\n", content, StringComparison.Ordinal);
            lines.AddRange(content[..^1].Split('\n'));
        }
        return lines;
    }

    public static List<string> AllLines(string dir)
    {
        var lines = new List<string>();
        for (int c = 0; c < EventVocabulary.CategoryCount; c++) lines.AddRange(Lines(dir, (EventCategory)c));
        return lines;
    }

    public static long Seq(string envelopeJson)
    {
        using var doc = JsonDocument.Parse(envelopeJson);
        return doc.RootElement.GetProperty("seq").GetInt64();
    }

    /// <summary>A hand-made envelope for driving the ring or the writer directly.</summary>
    public static Envelope Envelope(long seq, CaptureSession session, EventCategory category = EventCategory.Console,
        int dataBytes = 0)
    {
        string data = dataBytes > 0 ? ",\"data\":\"" + new string('x', dataBytes) + "\"" : "";
        string json = $"{{\"capture_session_id\":\"{session.Id}\",\"seq\":{seq},\"event\":{{\"ts\":1,\"type\":\"t\",\"category\":\"{EventVocabulary.Name(category)}\",\"detail_level\":\"standard\",\"source\":{{\"kind\":\"kernel_api\"}}{data}}}}}\n";
        return new Envelope(seq, Text.U8(json), category, SourceKind.KernelApi, 0, 0, session);
    }

    public static CaptureSession Session(string id = "s1") =>
        new(id, DateTimeOffset.UnixEpoch, EventVocabulary.AllCategoriesMask, DetailLevel.Standard, 0);
}
