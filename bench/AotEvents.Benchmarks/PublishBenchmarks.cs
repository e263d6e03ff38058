using System.Reflection;
using AotEvents.Events;
using AotEvents.Pipeline;
using BenchmarkDotNet.Attributes;

namespace AotEvents.Benchmarks;

/// <summary>
/// (a) Publishing the typical ~300-byte event.
/// <list type="bullet">
/// <item><see cref="Publish"/>: the real <see cref="EventPipeline.Publish"/> with an active session —
/// UTF-8 check, parse/validate, seq under the lock, envelope serialization, ring publish and JSONL
/// enqueue. The data dir is on tmpfs (/dev/shm) so the writer thread (on the other core) drains the
/// queue at memory speed and back-pressure never kicks in; rotated segments are deleted in the
/// background. Its Allocated column counts every thread, so it includes the writer's (amortized) share.</item>
/// <item><see cref="ParseSerializeRing"/>: the same path without the lock and the writer:
/// EventParser.TryParse + the pipeline's own BuildLine (bound by reflection to the private static
/// method, called through a delegate) + RingBuffer.Publish.</item>
/// <item><see cref="ParseOnly"/>: validation and event serialization alone (the fast path for this body);
/// <see cref="ParseReaderPath"/>: the same through the general <c>Utf8JsonReader</c> path.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
public class PublishBenchmarks
{
    private delegate byte[]? BuildLineFn(CaptureSession session, long seq, ReadOnlySpan<byte> eventJson,
        int dataFieldStart, out bool truncated, out int eventStart);

    private string _dir = "";
    private EventPipeline _pipeline = null!;
    private Timer _sweeper = null!;
    private RingBuffer _ring = null!;
    private EventDrafts _drafts = null!;
    private BuildLineFn _buildLine = null!;
    private CaptureSession _session = null!;
    private long _seq;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Workload.NewDataDir(preferTmpfs: true);
        _pipeline = EventPipeline.Open(new EventPipelineOptions
        {
            DataDir = _dir,
            SegmentBytes = 32L * 1024 * 1024,
            MaxQueueBytes = 64L * 1024 * 1024,
        }, _ => { });
        SessionOutcome started = _pipeline.StartSession(default);
        if (started.Status != 201) throw new InvalidOperationException("could not start a session: " + started.Message);
        _session = started.Session!;
        _sweeper = Workload.StartSegmentSweeper(_dir);

        _ring = new RingBuffer(8192, 16 * 1024 * 1024);
        _drafts = new EventDrafts();
        _buildLine = typeof(EventPipeline).GetMethod("BuildLine", BindingFlags.NonPublic | BindingFlags.Static)
            ?.CreateDelegate<BuildLineFn>()
            ?? throw new InvalidOperationException("EventPipeline.BuildLine(session, seq, eventJson, dataFieldStart, out truncated, out eventStart) not found");

        PublishOutcome probe = _pipeline.Publish(Workload.Body);
        if (!probe.Succeeded) throw new InvalidOperationException("publish failed: " + probe.Message);
        Console.WriteLine($"// body {Workload.Body.Length} bytes -> envelope line {probe.Envelope.Line.Length} bytes");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sweeper.Dispose();
        _pipeline.Dispose();
        _drafts.Dispose();
        Workload.DeleteDir(_dir);
    }

    [Benchmark(Baseline = true)]
    public long Publish() => _pipeline.Publish(Workload.Body).Envelope.Seq;

    [Benchmark]
    public long ParseSerializeRing()
    {
        _drafts.Clear();
        EventParser.TryParse(Workload.Body, 1795233936666000, DetailLevel.Standard, _drafts, 1, out _);
        ref EventDraft d = ref _drafts[0];
        long seq = ++_seq;
        byte[] line = _buildLine(_session, seq, _drafts.EventJson(d), d.DataFieldStart, out _, out int eventStart)!;
        _ring.Publish(new Envelope(seq, line, d.Category, d.SourceKind, (ushort)(eventStart + d.TypeStart),
            (ushort)d.TypeLength, _session));
        return seq;
    }

    [Benchmark]
    public int ParseOnly()
    {
        _drafts.Clear();
        EventParser.TryParse(Workload.Body, 1795233936666000, DetailLevel.Standard, _drafts, 1, out _);
        return _drafts[0].Length;
    }

    /// <summary>The general <c>Utf8JsonReader</c> path on the same body: the baseline for <see cref="ParseOnly"/>'s fast path.</summary>
    [Benchmark]
    public int ParseReaderPath()
    {
        _drafts.Clear();
        EventParser.TryParseWithReader(Workload.Body, 1795233936666000, DetailLevel.Standard, _drafts, 1, out _);
        return _drafts[0].Length;
    }
}
