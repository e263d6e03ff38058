using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace AotEvents.Benchmarks;

/// <summary>
/// One short job (1 launch, 3 warm-up, 5 measured iterations of ~250 ms) so the whole suite fits in a
/// few minutes on a 2-core VM, plus the memory diagnoser and events/s and MB/s columns.
/// </summary>
public sealed class BenchConfig : ManualConfig
{
    public BenchConfig()
    {
        AddJob(Job.Default
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(5)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250))
            .WithId("Short"));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(new ThroughputColumn(megabytes: false), new ThroughputColumn(megabytes: true));
        AddColumnProvider(DefaultColumnProviders.Instance);
        AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default);
        AddExporter(BenchmarkDotNet.Exporters.MarkdownExporter.GitHub);
        WithOptions(ConfigOptions.DisableOptimizationsValidator);
    }
}

/// <summary>
/// Throughput derived from the mean time per operation (one operation = one event, see
/// <c>OperationsPerInvoke</c>): events/s = 1e9 / mean ns; MB/s = events/s × the JSONL line size of the
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
        ? "Envelope bytes (JSONL line incl. '\\n') per second, 1 MB = 10^6 bytes"
        : "Events per second (1 s / Mean)";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || stats.Mean <= 0) return "NA";
        double eventsPerSecond = 1e9 / stats.Mean;
        if (!megabytes) return eventsPerSecond.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        double mbPerSecond = eventsPerSecond * Workload.LineBytes / 1e6;
        return mbPerSecond.ToString("N1", System.Globalization.CultureInfo.InvariantCulture);
    }
}
