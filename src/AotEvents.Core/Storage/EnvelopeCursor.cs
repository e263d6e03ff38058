using AotEvents.Events;
using AotEvents.Pipeline;

namespace AotEvents.Storage;

/// <summary>What an <see cref="EnvelopeCursor"/> read produced.</summary>
public enum CursorRead
{
    /// <summary>The next envelope (from the ring or from the files).</summary>
    Envelope,

    /// <summary>Seqs in neither the ring nor the files (deleted by retention): report them once.</summary>
    Gap,

    /// <summary>The next seq is the ring's to deliver (only from <see cref="EnvelopeCursor.TryReadFromFiles"/>).</summary>
    Ring,

    /// <summary>Caught up: the next seq is not published yet. Wait with <see cref="EnvelopeCursor.WaitAsync"/>.</summary>
    Idle,

    /// <summary>
    /// The next seq left the ring but the writer has not written it yet: wait for the writer with
    /// <see cref="EnvelopeCursor.WaitAsync"/> (never skip it).
    /// </summary>
    Pending,
}

/// <summary>One item of an <see cref="EnvelopeCursor"/>.</summary>
public readonly struct CursorItem
{
    private CursorItem(long seq, EventCategory category, ReadOnlyMemory<byte> json, Envelope envelope, long gapFrom, long gapTo)
    {
        Seq = seq;
        Category = category;
        Json = json;
        Envelope = envelope;
        GapFrom = gapFrom;
        GapTo = gapTo;
    }

    internal static CursorItem OfRing(in Envelope e) => new(e.Seq, e.Category, e.JsonMemory, e, 0, 0);

    internal static CursorItem OfFile(in ReplayItem r) => new(r.Seq, r.Category, r.Json, default, 0, 0);

    internal static CursorItem Gap(long from, long to) => new(0, default, default, default, from, to);

    public long Seq { get; }
    public EventCategory Category { get; }

    /// <summary>Envelope JSON without the newline; for file items valid until the next read.</summary>
    public ReadOnlyMemory<byte> Json { get; }

    /// <summary>True when the envelope came from the ring (<see cref="Envelope"/> is then set).</summary>
    public bool FromRing => !Envelope.IsEmpty;

    /// <summary>The ring's envelope (with its session and filter fields); empty for file items.</summary>
    public Envelope Envelope { get; }

    public long GapFrom { get; }
    public long GapTo { get; }
    public long GapCount => GapTo - GapFrom + 1;
}

/// <summary>
/// A reader's position in the global event sequence that reads from the ring while the ring holds
/// the next seq and from the JSONL files (<see cref="JsonlReplay"/>) when it does not (SPEC §4:
/// replay never silently loses events). <see cref="Position"/> is always the exact last seq
/// delivered or reported as a gap, so switching between ring and files has no gap and no
/// duplicate. A seq that left the ring before the writer wrote it is waited for, never skipped;
/// only seqs that no file holds any more (retention) come out as a <see cref="CursorRead.Gap"/>.
/// <para>
/// Back to the ring: once the next seq is in the ring, reading moves back to it, except that while
/// a replay is open and the next seq is within the oldest quarter of the ring (about to be evicted
/// again) it keeps reading the files up to what the writer has written, so a reader just at the
/// ring's edge does not bounce between the two.
/// </para>
/// Holds at most one open replay (a few small pooled buffers); not thread-safe.
/// </summary>
public sealed class EnvelopeCursor : IDisposable
{
    private readonly RingBuffer _ring;
    private readonly JsonlWriter _writer;
    private JsonlReplay? _replay;
    private CursorRead _last = CursorRead.Envelope;

    public EnvelopeCursor(RingBuffer ring, JsonlWriter writer, long afterSeq)
    {
        _ring = ring;
        _writer = writer;
        Position = Math.Max(0, afterSeq);
    }

    public EnvelopeCursor(EventPipeline pipeline, long afterSeq) : this(pipeline.Ring, pipeline.Writer, afterSeq)
    {
    }

    /// <summary>The last seq delivered (or covered by a gap).</summary>
    public long Position { get; private set; }

    /// <summary>True while reading from the files.</summary>
    public bool IsReplaying => _replay is not null;

    /// <summary>Envelopes read from the files so far.</summary>
    public long ReplayedCount { get; private set; }

    /// <summary>Bytes the replays of this cursor read from the files.</summary>
    public long ReplayBytesRead { get; private set; }

    /// <summary>
    /// The lowest seq still held anywhere (files or ring). A reader asking for everything
    /// (<c>after_seq=0</c>) starts just before it: what retention removed before the oldest retained
    /// event is not reported as dropped (SPEC §4).
    /// </summary>
    public static long OldestRetainedSeq(RingBuffer ring, JsonlWriter writer) =>
        Math.Min(writer.LowestRetainedSeq, ring.OldestSeq);

    /// <summary>
    /// Reads the next item from the files while the ring does not hold the next seq; returns
    /// <see cref="CursorRead.Ring"/> (without consuming anything) once the ring should take over.
    /// </summary>
    public CursorRead TryReadFromFiles(out CursorItem item)
    {
        item = default;
        while (true)
        {
            long next = Position + 1;
            int inRing = _ring.TryGet(next, out _);
            if (inRing == 0 || (inRing == 1 && (_replay is null || !NearRingEdge(next))))
            {
                CloseReplay();
                return _last = CursorRead.Ring;
            }

            if (_replay is null)
            {
                if (next > _writer.WrittenSeq) return _last = CursorRead.Pending;
                _replay = JsonlReplay.Open(_writer, Position);
            }

            switch (_replay.TryRead(out ReplayItem r))
            {
                case ReplayRead.Envelope:
                    Position = r.Seq;
                    ReplayedCount++;
                    item = CursorItem.OfFile(in r);
                    return _last = CursorRead.Envelope;

                case ReplayRead.Gap:
                {
                    long from = r.GapFrom, to = r.GapTo;
                    long oldest = _ring.OldestSeq;
                    if (oldest <= to)
                    {
                        // The end of the hole is still in the ring: only what is before it is lost.
                        to = oldest - 1;
                        CloseReplay();
                    }
                    if (to < from) continue;
                    Position = to;
                    item = CursorItem.Gap(from, to);
                    return _last = CursorRead.Gap;
                }

                default: // End of what was written when the replay was opened or refreshed.
                    if (_writer.WrittenSeq > _replay.BoundSeq)
                    {
                        _replay.Refresh();
                        continue;
                    }
                    if (inRing == 1)
                    {
                        CloseReplay();
                        return _last = CursorRead.Ring;
                    }
                    return _last = CursorRead.Pending;
            }
        }
    }

    /// <summary>Reads the next envelope from the ring or the files, or reports a gap, or says to wait.</summary>
    public CursorRead TryRead(out CursorItem item)
    {
        while (true)
        {
            CursorRead read = TryReadFromFiles(out item);
            if (read != CursorRead.Ring) return read;
            int got = _ring.TryGet(Position + 1, out Envelope e);
            if (got == 1)
            {
                Position = e.Seq;
                item = CursorItem.OfRing(in e);
                return _last = CursorRead.Envelope;
            }
            if (got == 0) return _last = CursorRead.Idle;
            // Evicted between the two looks: read it from the files.
        }
    }

    /// <summary>
    /// Completes when the last <see cref="CursorRead.Idle"/> or <see cref="CursorRead.Pending"/> may
    /// have changed: something was published, or the writer wrote further.
    /// </summary>
    public Task WaitAsync() => _last switch
    {
        // With a replay open, what it waits for is the writer writing past the replay's bound (a hole
        // before the bound is reported once its end is known, see JsonlReplay.TryRead).
        CursorRead.Pending => _writer.WaitWrittenAsync(Math.Max(Position, _replay?.BoundSeq ?? 0) + 1),
        CursorRead.Idle or CursorRead.Ring => _ring.WaitAsync(Position),
        _ => Task.CompletedTask,
    };

    private bool NearRingEdge(long next)
    {
        long oldest = _ring.OldestSeq;
        long count = _ring.LastSeq - oldest + 1;
        return next - oldest < count / 4;
    }

    private void CloseReplay()
    {
        if (_replay is null) return;
        ReplayBytesRead += _replay.BytesRead;
        _replay.Dispose();
        _replay = null;
    }

    public void Dispose() => CloseReplay();
}
