using AotEvents.Events;

namespace AotEvents.Pipeline;

/// <summary>What a <see cref="RingReader"/> yields: an envelope, or the exact number of envelopes it missed.</summary>
public readonly struct RingReadResult
{
    private RingReadResult(Envelope envelope, long dropped)
    {
        Envelope = envelope;
        Dropped = dropped;
    }

    /// <summary>The next envelope; empty when <see cref="IsDropped"/>.</summary>
    public Envelope Envelope { get; }

    /// <summary>How many envelopes fell out of the ring before this reader got to them.</summary>
    public long Dropped { get; }

    public bool IsDropped => Dropped > 0;

    public static RingReadResult Of(in Envelope envelope) => new(envelope, 0);
    public static RingReadResult Missed(long count) => new(default, count);
}

/// <summary>
/// An independent cursor into a <see cref="RingBuffer"/>: resumable after any seq, never blocks the
/// writer. A reader that fell behind gets one <see cref="RingReadResult.Missed"/> result with the
/// exact count and continues at the oldest envelope still held.
/// </summary>
public sealed class RingReader
{
    private readonly RingBuffer _ring;

    public RingReader(RingBuffer ring, long afterSeq)
    {
        _ring = ring;
        Position = afterSeq;
    }

    /// <summary>The seq of the last envelope consumed (or skipped as missed).</summary>
    public long Position { get; private set; }

    public bool TryRead(out RingReadResult result)
    {
        while (true)
        {
            int n = _ring.TryGet(Position + 1, out Envelope envelope);
            if (n == 1)
            {
                Position = envelope.Seq;
                result = RingReadResult.Of(envelope);
                return true;
            }
            if (n == 0)
            {
                result = default;
                return false;
            }
            long oldest = _ring.OldestSeq;
            if (oldest <= Position + 1) continue; // raced with an eviction that has since settled
            long missed = oldest - Position - 1;
            Position = oldest - 1;
            result = RingReadResult.Missed(missed);
            return true;
        }
    }

    /// <summary>Waits until something is available to read.</summary>
    public Task WaitAsync() => _ring.WaitAsync(Position);
}
