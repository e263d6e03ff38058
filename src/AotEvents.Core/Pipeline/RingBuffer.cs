using AotEvents.Events;

namespace AotEvents.Pipeline;

/// <summary>
/// The in-memory window of recent envelopes for live fan-out (SPEC §4, §8). Bounded by count and by
/// bytes; the oldest envelopes are evicted first. There is exactly one writer at a time (the
/// pipeline publishes under its lock) and any number of lock-free readers: each slot is guarded by
/// its seq like a seqlock, so a reader either copies a consistent slot or learns it was overwritten.
/// Writers never block and never wait for readers.
/// The slot array starts small and doubles (up to the capacity) only when it is full, so an idle
/// daemon does not commit the full-capacity array (8192 slots are 384 KiB). The writer fills the new
/// array before publishing it, and stops writing to the old one: a reader still holding the old array
/// finds there every seq published before the switch, and one that saw a later seq also sees the new
/// array (it reads <c>_lastSeq</c> before <c>_slots</c>).
/// </summary>
public sealed class RingBuffer
{
    private struct Slot
    {
        public long Seq; // 0 = empty, -1 = being written
        public Envelope Value;
        public int Size; // Value.Line.Length, kept here so evicting does not touch the old (cold) array
    }

    /// <summary>First size of the slot array; it doubles on demand up to <see cref="Capacity"/>.</summary>
    internal const int InitialSlots = 256;

    private Slot[] _slots; // replaced (never modified afterwards) when it grows
    private readonly int _capacity;
    private readonly long _maxBytes;
    private long _bytes;
    private long _oldestSeq = 1;
    private long _lastSeq;
    private TaskCompletionSource? _waiters;
    private readonly object _waitLock = new();

    public RingBuffer(int capacity, long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        _capacity = capacity;
        _slots = new Slot[Math.Min(capacity, InitialSlots)];
        _maxBytes = maxBytes;
    }

    public int Capacity => _capacity;

    /// <summary>Length of the slot array today (grows up to <see cref="Capacity"/>).</summary>
    internal int AllocatedSlots => Volatile.Read(ref _slots).Length;

    /// <summary>Highest seq published (0 when none).</summary>
    public long LastSeq => Volatile.Read(ref _lastSeq);

    /// <summary>Lowest seq still held; greater than <see cref="LastSeq"/> when the ring is empty.</summary>
    public long OldestSeq => Volatile.Read(ref _oldestSeq);

    public int Count => (int)(LastSeq - OldestSeq + 1);

    public long Bytes => Volatile.Read(ref _bytes);

    /// <summary>
    /// Makes the ring start after <paramref name="lastSeq"/> (recovered from disk at start): readers
    /// asking for older seqs learn they are behind instead of waiting forever.
    /// </summary>
    public void Reset(long lastSeq)
    {
        Array.Clear(_slots);
        _bytes = 0;
        Volatile.Write(ref _lastSeq, lastSeq);
        Volatile.Write(ref _oldestSeq, lastSeq + 1);
    }

    /// <summary>
    /// Appends an envelope. Callers serialize calls (the pipeline lock) and pass seqs in order.
    /// Allocation-free; wakes readers with one signal, and only when someone waits.
    /// </summary>
    public void Publish(in Envelope envelope)
    {
        long seq = envelope.Seq;
        int size = envelope.Line.Length;
        long oldest = _oldestSeq;
        long count = _lastSeq - oldest + 1;
        Slot[] slots = _slots;
        if (count == slots.Length && slots.Length < _capacity && _bytes + size <= _maxBytes)
            slots = Grow(slots, oldest, count);
        while (count > 0 && (count == slots.Length || _bytes + size > _maxBytes))
        {
            ref Slot evicted = ref slots[oldest % slots.Length];
            _bytes -= evicted.Size;
            oldest++;
            count--;
        }
        // Readers check OldestSeq before trusting a slot, so advance it before reusing slots.
        Volatile.Write(ref _oldestSeq, oldest);

        ref Slot slot = ref slots[seq % slots.Length];
        Interlocked.Exchange(ref slot.Seq, -1); // full fence: the value below is not visible before this
        slot.Value = envelope;
        slot.Size = size;
        Volatile.Write(ref slot.Seq, seq);
        _bytes += size;
        Volatile.Write(ref _lastSeq, seq);

        if (Volatile.Read(ref _waiters) is not null) WakeReaders();
    }

    /// <summary>
    /// Doubles the slot array (writer only): copies the held envelopes to their slots in the new array,
    /// then publishes it. Readers see either array whole; the old one is never written again.
    /// </summary>
    private Slot[] Grow(Slot[] slots, long oldest, long count)
    {
        var bigger = new Slot[Math.Min(_capacity, slots.Length * 2)];
        for (long seq = oldest; seq < oldest + count; seq++)
            bigger[seq % bigger.Length] = slots[seq % slots.Length];
        Volatile.Write(ref _slots, bigger);
        return bigger;
    }

    private void WakeReaders()
    {
        TaskCompletionSource? waiters;
        lock (_waitLock)
        {
            waiters = _waiters;
            _waiters = null;
        }
        waiters?.TrySetResult();
    }

    /// <summary>
    /// Copies envelopes with seq &gt; <paramref name="afterSeq"/> into <paramref name="into"/>, in order.
    /// Returns the number copied, or -1 when the next wanted seq has already been evicted (the caller
    /// fell behind: it missed at least <c>OldestSeq - afterSeq - 1</c> envelopes).
    /// </summary>
    public int Read(long afterSeq, Span<Envelope> into)
    {
        int n = 0;
        while (n < into.Length)
        {
            int got = TryGet(afterSeq + 1 + n, out into[n]);
            if (got == 0) break;
            if (got < 0) return n > 0 ? n : -1;
            n++;
        }
        return n;
    }

    /// <summary>One-envelope form of <see cref="Read"/>: 1 = got it, 0 = not published yet, -1 = evicted.</summary>
    public int TryGet(long seq, out Envelope value)
    {
        if (seq < Volatile.Read(ref _oldestSeq))
        {
            value = default;
            return -1;
        }
        if (seq > Volatile.Read(ref _lastSeq))
        {
            value = default;
            return 0;
        }
        // Read after _lastSeq: an array published before that seq was, or a later one.
        Slot[] slots = Volatile.Read(ref _slots);
        ref Slot slot = ref slots[seq % slots.Length];
        if (Volatile.Read(ref slot.Seq) == seq)
        {
            value = slot.Value;
            Interlocked.MemoryBarrier(); // the copy above completes before the re-check below
            if (Volatile.Read(ref slot.Seq) == seq) return 1;
        }
        // Overwritten (or being overwritten) by a newer seq: it was evicted.
        value = default;
        return -1;
    }

    /// <summary>
    /// Completes when an envelope with seq &gt; <paramref name="afterSeq"/> exists (or at once if
    /// one does). All waiters share one task, created only while someone waits.
    /// </summary>
    public Task WaitAsync(long afterSeq)
    {
        if (LastSeq > afterSeq) return Task.CompletedTask;
        Task task;
        lock (_waitLock)
        {
            _waiters ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            task = _waiters.Task;
        }
        // A publish between the first check and the registration would not have seen us waiting.
        if (LastSeq > afterSeq) WakeReaders();
        return task;
    }

    /// <summary>Wakes every waiting reader (shutdown), whether or not anything was published.</summary>
    public void WakeAll() => WakeReaders();
}
