using AotEvents.Archive;
using AotEvents.Config;
using AotEvents.Http.Sse;
using AotEvents.Pipeline;
using AotEvents.Shipping;

namespace AotEvents.Http.Handlers;

/// <summary>Everything the handlers need, wired once by Program.</summary>
public sealed class DaemonContext
{
    public required DaemonConfig Config { get; init; }
    public required EventPipeline Pipeline { get; init; }
    public required IArchiveReader Archive { get; init; }
    public IEventShipper? Shipper { get; init; }
    public StreamMetrics StreamMetrics { get; } = new();

    /// <summary>Cancelled when shutdown begins: streams finish what was published, then end.</summary>
    public CancellationToken Shutdown { get; init; }

    /// <summary>Live connection count, for /metrics.</summary>
    public Func<int>? Connections { get; set; }
}
