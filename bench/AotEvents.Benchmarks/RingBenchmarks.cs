using AotEvents.Events;
using AotEvents.Pipeline;
using BenchmarkDotNet.Attributes;

namespace AotEvents.Benchmarks;

/// <summary>(b) RingBuffer.Publish alone (steady state: every publish evicts the oldest) — must allocate 0 bytes.</summary>
[MemoryDiagnoser]
public class RingBenchmarks
{
    private RingBuffer _ring = null!;
    private RingReader _reader = null!;
    private long _seq;

    [GlobalSetup]
    public void Setup()
    {
        _ring = new RingBuffer(8192, 16 * 1024 * 1024);
        _reader = new RingReader(_ring, 0);
    }

    [Benchmark(Baseline = true)]
    public void RingPublish() =>
        _ring.Publish(new Envelope(++_seq, Workload.Line, EventCategory.Console, SourceKind.Extension, 0, 0, Workload.Session));

    /// <summary>Publish plus one reader consuming it (the live SSE hand-off).</summary>
    [Benchmark]
    public long RingPublishAndRead()
    {
        _ring.Publish(new Envelope(++_seq, Workload.Line, EventCategory.Console, SourceKind.Extension, 0, 0, Workload.Session));
        _reader.TryRead(out RingReadResult r);
        return r.Envelope.Seq + r.Dropped;
    }
}
