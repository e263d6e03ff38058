namespace AotEvents.S2.Shipping;

/// <summary>Batching and retry settings of <see cref="S2Shipper"/> (SPEC §6).</summary>
public sealed class ShipperOptions
{
    /// <summary>The one stream for every event (<c>S2_STREAM</c>); null = one stream per capture session.</summary>
    public string? FixedStream { get; init; }

    public TimeSpan Linger { get; init; } = TimeSpan.FromMilliseconds(100);
    public int MaxRecords { get; init; } = 50;
    public long MaxBytes { get; init; } = S2Limits.MaxAppendMeteredBytes;

    /// <summary>First retry delay; doubles per attempt up to <see cref="MaxBackoff"/>, with full jitter.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(100);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(5);
}
