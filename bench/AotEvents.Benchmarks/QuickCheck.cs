using System.Diagnostics;
using AotEvents.Pipeline;

namespace AotEvents.Benchmarks;

/// <summary>
/// <c>-- --quick</c>: a min-of-many-short-batches timing of <see cref="EventPipeline.Publish"/> (tmpfs
/// data dir, active session) plus the bytes allocated on the publishing thread. On a shared VM, where
/// BenchmarkDotNet's means are dominated by other processes, the fastest 2,000-publish batches show
/// the intrinsic cost.
/// </summary>
public static class QuickCheck
{
    public static void Run()
    {
        string dir = Workload.NewDataDir(preferTmpfs: true);
        try
        {
            using var pipeline = EventPipeline.Open(new EventPipelineOptions
            {
                DataDir = dir,
                SegmentBytes = 1L << 40,
                MaxQueueBytes = 64L * 1024 * 1024,
            }, _ => { });
            pipeline.StartSession(default);
            for (int i = 0; i < 100_000; i++) pipeline.Publish(Workload.Body); // JIT tiers, queue growth

            const int batches = 400, perBatch = 2_000;
            var nsPerPublish = new double[batches];
            long allocated = 0;
            for (int b = 0; b < batches; b++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < perBatch; i++) pipeline.Publish(Workload.Body);
                nsPerPublish[b] = Stopwatch.GetElapsedTime(start).TotalNanoseconds / perBatch;
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            }
            Array.Sort(nsPerPublish);
            int line = pipeline.Publish(Workload.Body).Envelope.Line.Length;
            Console.WriteLine($"EventPipeline.Publish, {Workload.Body.Length}-byte body -> {line}-byte envelope line, {batches} x {perBatch} publishes:");
            Console.WriteLine($"  min {nsPerPublish[0]:F0} ns   p10 {nsPerPublish[batches / 10]:F0} ns   median {nsPerPublish[batches / 2]:F0} ns per publish");
            Console.WriteLine($"  publishing thread allocated {(double)allocated / (batches * perBatch):F1} B per publish " +
                $"(one byte[{line}] = {24 + ((line + 7) & ~7)} B)");
        }
        finally
        {
            Workload.DeleteDir(dir);
        }
    }
}
