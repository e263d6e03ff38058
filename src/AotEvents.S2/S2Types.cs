namespace AotEvents.S2;

/// <summary>A position in a stream: a sequence number and the timestamp (ms since epoch when service-assigned).</summary>
public readonly record struct S2StreamPosition(long SeqNum, long Timestamp);

/// <summary>Acknowledgement of an append (<c>AppendAck</c>).</summary>
/// <param name="Start">Sequence number and timestamp of the first appended record.</param>
/// <param name="End">Sequence number of the last appended record + 1, timestamp of the last appended record.</param>
/// <param name="Tail">Next sequence number of the stream after the append (may exceed <paramref name="End"/>).</param>
public sealed record S2AppendAck(S2StreamPosition Start, S2StreamPosition End, S2StreamPosition Tail)
{
    /// <summary>Number of records the append stored.</summary>
    public long Count => End.SeqNum - Start.SeqNum;
}

/// <summary>One record read from a stream. <see cref="Body"/> is the record's UTF-8 body (format <c>raw</c>).</summary>
public readonly record struct S2Record(long SeqNum, long Timestamp, ReadOnlyMemory<byte> Body);

/// <summary>The answer to a read (<c>ReadBatch</c>).</summary>
/// <param name="Records">Records in sequence order; empty only when an explicit bound stopped the read.</param>
/// <param name="Tail">The stream's tail, present only when the service reports it (recent reads).</param>
public sealed record S2ReadBatch(IReadOnlyList<S2Record> Records, S2StreamPosition? Tail);

/// <summary>Which kind of starting point a read uses.</summary>
public enum S2ReadFrom
{
    /// <summary><c>seq_num</c>: the first sequence number to read.</summary>
    SeqNum,

    /// <summary><c>timestamp</c>: the first record with a timestamp ≥ this value.</summary>
    Timestamp,

    /// <summary><c>tail_offset</c>: this many records before the tail.</summary>
    TailOffset,
}

/// <summary>Starting point of a read.</summary>
public readonly record struct S2ReadStart(S2ReadFrom From, long Value)
{
    /// <summary>Start at a sequence number.</summary>
    public static S2ReadStart AtSeqNum(long seqNum) => new(S2ReadFrom.SeqNum, seqNum);

    /// <summary>Start at the first record whose timestamp is ≥ <paramref name="timestamp"/>.</summary>
    public static S2ReadStart AtTimestamp(long timestamp) => new(S2ReadFrom.Timestamp, timestamp);

    /// <summary>Start <paramref name="offset"/> records before the tail.</summary>
    public static S2ReadStart AtTailOffset(long offset) => new(S2ReadFrom.TailOffset, offset);

    internal string QueryName => From switch
    {
        S2ReadFrom.SeqNum => "seq_num",
        S2ReadFrom.Timestamp => "timestamp",
        _ => "tail_offset",
    };
}

/// <summary>Service limits and metering (S2 "metered bytes") that batchers must respect.</summary>
public static class S2Limits
{
    /// <summary>Most records in one append batch.</summary>
    public const int MaxAppendRecords = 1000;

    /// <summary>Most metered bytes in one append batch (1 MiB).</summary>
    public const int MaxAppendMeteredBytes = 1024 * 1024;

    /// <summary>Most records one unary read returns.</summary>
    public const int MaxReadRecords = 1000;

    /// <summary>Metered size of a record with no headers: 8 + body length.</summary>
    public static int MeteredBytes(int bodyLength) => 8 + bodyLength;
}
