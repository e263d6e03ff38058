namespace AotEvents.Events;

/// <summary>
/// One sequenced event as every consumer sees it. <see cref="Line"/> is the compact envelope JSON
/// followed by '\n', serialized exactly once: the JSONL file, the ring, SSE frames, S2 record
/// bodies and the publish answer all use these bytes. The other fields are what filters need, so
/// nobody re-parses the JSON. It is a struct so that the byte array is the only allocation per event.
/// </summary>
public readonly struct Envelope
{
    public Envelope(long seq, byte[] line, EventCategory category, SourceKind sourceKind,
        ushort typeStart, ushort typeLength, CaptureSession session)
    {
        Seq = seq;
        Line = line;
        Category = category;
        SourceKind = sourceKind;
        TypeStart = typeStart;
        TypeLength = typeLength;
        Session = session;
    }

    public long Seq { get; }

    /// <summary>Envelope JSON plus the trailing '\n' of its JSONL line.</summary>
    public byte[] Line { get; }

    public EventCategory Category { get; }
    public SourceKind SourceKind { get; }
    public CaptureSession Session { get; }
    private ushort TypeStart { get; }
    private ushort TypeLength { get; }

    public bool IsEmpty => Line is null;

    /// <summary>The envelope JSON without the newline.</summary>
    public ReadOnlySpan<byte> Json => Line.AsSpan(0, Line.Length - 1);

    public ReadOnlyMemory<byte> JsonMemory => Line.AsMemory(0, Line.Length - 1);

    /// <summary>The type as written in the envelope (JSON-escaped only for '"' and '\').</summary>
    public ReadOnlySpan<byte> Type => Line.AsSpan(TypeStart, TypeLength);
}
