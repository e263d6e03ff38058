using AotEvents.Events;

namespace AotEvents.Pipeline;

/// <summary>
/// Result of a publish: 200 with the envelope (single) or the seq range (batch), or an error status
/// with its message. A struct so a successful publish allocates nothing but the envelope.
/// </summary>
public readonly struct PublishOutcome
{
    private PublishOutcome(int status, string? message, Envelope envelope, int accepted, long firstSeq, long lastSeq)
    {
        Status = status;
        Message = message;
        Envelope = envelope;
        Accepted = accepted;
        FirstSeq = firstSeq;
        LastSeq = lastSeq;
    }

    public int Status { get; }
    public string? Message { get; }

    /// <summary>The published envelope of a single-event publish.</summary>
    public Envelope Envelope { get; }

    public int Accepted { get; }
    public long FirstSeq { get; }
    public long LastSeq { get; }
    public bool Succeeded => Status == 200;

    public static PublishOutcome Single(in Envelope envelope) =>
        new(200, null, envelope, 1, envelope.Seq, envelope.Seq);

    public static PublishOutcome Batch(int accepted, long firstSeq, long lastSeq) =>
        new(200, null, default, accepted, firstSeq, lastSeq);

    public static PublishOutcome Error(int status, string message) => new(status, message, default, 0, 0, 0);
}

/// <summary>Result of starting or stopping a capture session.</summary>
public readonly record struct SessionOutcome(int Status, string? Message, CaptureSession? Session);
