using System.Text.Json.Serialization;

namespace AotEvents.S2.Json;

// Request and response shapes of openapi.json that have no public counterpart. Property names map
// through the context's snake_case policy (MatchSeqNum → match_seq_num).

/// <summary><c>AppendInput</c> with raw-format bodies.</summary>
internal sealed class AppendInputWire
{
    [JsonConverter(typeof(RawRecordListConverter))]
    public required IReadOnlyList<ReadOnlyMemory<byte>> Records { get; init; }

    public long? MatchSeqNum { get; init; }
}

/// <summary><c>CreateStreamRequest</c> (default stream configuration).</summary>
internal sealed class CreateStreamRequestWire
{
    public required string Stream { get; init; }
}

/// <summary><c>ErrorInfo</c>.</summary>
internal sealed class ErrorInfoWire
{
    public string? Code { get; init; }

    public string? Message { get; init; }
}

/// <summary><c>AppendConditionFailed</c> (one of the two members is present).</summary>
internal sealed class AppendConditionFailedWire
{
    public long? SeqNumMismatch { get; init; }

    public string? FencingTokenMismatch { get; init; }

    // Some servers answer 412 with a plain ErrorInfo.
    public string? Code { get; init; }

    public string? Message { get; init; }
}

/// <summary><c>TailResponse</c> (check-tail answer and 416 body).</summary>
internal sealed class TailResponseWire
{
    public S2StreamPosition? Tail { get; init; }

    // 416 bodies from some servers carry ErrorInfo members too.
    public string? Code { get; init; }

    public string? Message { get; init; }
}
