using AotEvents.Events;
using AotEvents.Storage;
using BenchmarkDotNet.Attributes;

namespace AotEvents.Benchmarks;

/// <summary>
/// (c) JSONL append throughput with group commit, on the real disk (the temp dir, not tmpfs, so fsync
/// costs what it costs): enqueue N envelope lines of the typical event, then await
/// <see cref="JsonlWriter.FlushAsync"/> (written + fsync'd). One operation = one event, so Mean is the
/// time per event and the Events/s and MB/s columns are the sustained append rate.
/// <see cref="AckDisk_OneEventPerFsync"/> is the worst case for contrast: one event, then wait for its fsync.
/// </summary>
[MemoryDiagnoser]
public class JsonlAppendBenchmarks
{
    private string _dir = "";
    private JsonlWriter _writer = null!;
    private Timer _sweeper = null!;
    private long _seq;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Workload.NewDataDir(preferTmpfs: false);
        _writer = new JsonlWriter(new JsonlWriterOptions
        {
            DataDir = _dir,
            SegmentBytes = 64L * 1024 * 1024,
            MaxQueueBytes = long.MaxValue,
        }, 0, _ => { });
        _sweeper = Workload.StartSegmentSweeper(_dir);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sweeper.Dispose();
        _writer.Dispose();
        Workload.DeleteDir(_dir);
    }

    private Task AppendAndFlush(int count)
    {
        for (int i = 0; i < count; i++)
            _writer.Enqueue(new Envelope(++_seq, Workload.Line, EventCategory.Console, SourceKind.Extension, 0, 0, Workload.Session));
        return _writer.FlushAsync();
    }

    [Benchmark(OperationsPerInvoke = 1_000)]
    public Task GroupCommit_1k() => AppendAndFlush(1_000);

    [Benchmark(OperationsPerInvoke = 10_000, Baseline = true)]
    public Task GroupCommit_10k() => AppendAndFlush(10_000);

    [Benchmark(OperationsPerInvoke = 1)]
    public Task AckDisk_OneEventPerFsync()
    {
        long seq = ++_seq;
        _writer.Enqueue(new Envelope(seq, Workload.Line, EventCategory.Console, SourceKind.Extension, 0, 0, Workload.Session));
        return _writer.WaitDurableAsync(seq);
    }
}
