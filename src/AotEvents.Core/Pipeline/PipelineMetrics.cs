namespace AotEvents.Pipeline;

/// <summary>Counters of the publish path, read by <c>/metrics</c>. Updated with Interlocked.</summary>
public sealed class PipelineMetrics
{
    public long Published;
    public long Refused;
    public long Truncated;
}
