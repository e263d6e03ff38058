using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace AotEvents.Benchmarks;

/// <summary>
/// One short job (1 launch, 5 warm-up and 50 measured iterations of ~25 ms) so the whole suite fits in a
/// few minutes on a 2-core VM, plus the memory diagnoser, Min/Median, and events/s and MB/s columns.
/// </summary>
public sealed class BenchConfig : ManualConfig
{
    public BenchConfig()
    {
        // Many short iterations rather than a few long ones: on a shared 2-core VM a 25 ms iteration often
        // runs unpreempted, so Min/Median show the intrinsic cost while Mean shows the noise.
        AddJob(Job.Default
            .WithLaunchCount(1)
            .WithWarmupCount(5)
            .WithIterationCount(50)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(25))
            .WithId("Short"));
        AddDiagnoser(MemoryDiagnoser.Default);
        // Min next to Mean: on a shared 2-core VM the minimum is the best estimate of the intrinsic cost.
        AddColumn(StatisticColumn.Min, StatisticColumn.Median, new ThroughputColumn(megabytes: false), new ThroughputColumn(megabytes: true));
        AddColumnProvider(DefaultColumnProviders.Instance);
        AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default);
        AddExporter(BenchmarkDotNet.Exporters.MarkdownExporter.GitHub);
    }
}

/// <summary>
/// Throughput derived from the median time per operation (one operation = one event, see
/// <c>OperationsPerInvoke</c>): events/s = 1e9 / median ns; MB/s = events/s × the JSONL line size of the
/// benchmark's event (<see cref="Workload.LineBytes"/>).
/// </summary>
public sealed class ThroughputColumn(bool megabytes) : IColumn
{
    public string Id => megabytes ? "ThroughputMBps" : "ThroughputEventsPerSec";
    public string ColumnName => megabytes ? "MB/s" : "Events/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => megabytes ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => megabytes
        ? "Envelope bytes (JSONL line incl. '\\n') per second at the Median, 1 MB = 10^6 bytes"
        : "Events per second at the Median (1 s / Median)";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || stats.Median <= 0) return "NA";
        double eventsPerSecond = 1e9 / stats.Median;
        if (!megabytes) return eventsPerSecond.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        double mbPerSecond = eventsPerSecond * Workload.LineBytes / 1e6;
        return mbPerSecond.ToString("N1", System.Globalization.CultureInfo.InvariantCulture);
    }
}
