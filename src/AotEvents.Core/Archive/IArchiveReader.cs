namespace AotEvents.Archive;

/// <summary>A parsed <c>GET /telemetry/events</c> query (SPEC §7).</summary>
public sealed class ArchiveQuery
{
    /// <summary>Cursor from the previous page's X-Next-Offset (S2 seq_num, or seq without S2). Wins over Since.</summary>
    public long? Offset { get; init; }

    /// <summary>Window start, Unix microseconds (inclusive), matched against <c>event.ts</c> / S2 timestamps.</summary>
    public long? SinceMicros { get; init; }

    /// <summary>Window end, Unix microseconds (exclusive).</summary>
    public long? UntilMicros { get; init; }

    /// <summary>Bit mask of categories to return; all when every bit is set.</summary>
    public int CategoryMask { get; init; } = Events.EventVocabulary.AllCategoriesMask;

    /// <summary>Which session's events (its stream when S2 uses per-session streams).</summary>
    public string? CaptureSessionId { get; init; }

    /// <summary>Page size, already clamped to 1..1000.</summary>
    public int Limit { get; init; } = 100;
}

/// <summary>One page of archived envelopes, oldest first.</summary>
public sealed class ArchivePage
{
    public List<ReadOnlyMemory<byte>> Envelopes { get; } = new();
    public bool HasMore { get; set; }
    public long? NextOffset { get; set; }
}

/// <summary>
/// Reads archived events back (SPEC §7): from S2 when it is configured, else from the JSONL files.
/// Reads have no side effects.
/// </summary>
public interface IArchiveReader
{
    /// <summary>Throws <see cref="ArchiveUnavailableException"/> when the backing store fails (502).</summary>
    Task<ArchivePage> ReadAsync(ArchiveQuery query, CancellationToken cancellationToken);
}

public sealed class ArchiveUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
