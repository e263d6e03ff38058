using System.Buffers;

namespace AotEvents.Events;

/// <summary>
/// Where one parsed, validated <c>event</c> object sits inside an <see cref="EventDrafts"/> buffer.
/// </summary>
public struct EventDraft
{
    public int Start;
    public int Length;

    /// <summary>Offset (relative to Start) of <c>,"data":</c>, or -1 when the event has no data.</summary>
    public int DataFieldStart;

    /// <summary>Offset (relative to Start) and length of the type's bytes inside the quotes.</summary>
    public int TypeStart;
    public int TypeLength;

    public EventCategory Category;
    public SourceKind SourceKind;

    /// <summary>1-based line of an NDJSON batch (1 for a single event).</summary>
    public int LineNumber;
}

/// <summary>
/// The serialized <c>event</c> objects of one publish request, written once into one pooled
/// buffer by <see cref="EventParser"/> outside the pipeline lock. The pipeline only wraps each in
/// the seq-dependent envelope prefix. Reused per thread: the publish path never awaits between
/// parsing and sequencing, so a thread-static instance is safe and allocation-free.
/// </summary>
public sealed class EventDrafts : IDisposable
{
    private const int InitialBufferBytes = 4096;
    private const int MaxRetainedBufferBytes = 1 << 20;

    [ThreadStatic] private static EventDrafts? t_cached;

    private byte[] _buffer;
    private int _written;
    private EventDraft[] _drafts = new EventDraft[1];

    public EventDrafts() => _buffer = ArrayPool<byte>.Shared.Rent(InitialBufferBytes);

    public int Count { get; private set; }

    /// <summary>Takes the calling thread's instance (or a new one); give it back with <see cref="Return"/>.</summary>
    public static EventDrafts Rent()
    {
        EventDrafts? d = t_cached;
        if (d is null) return new EventDrafts();
        t_cached = null;
        return d;
    }

    /// <summary>Clears and caches the instance for the next publish on this thread.</summary>
    public void Return()
    {
        Clear();
        if (_buffer.Length > MaxRetainedBufferBytes)
        {
            // A huge request must not keep megabytes alive per thread.
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(InitialBufferBytes);
        }
        t_cached = this;
    }

    public ref EventDraft this[int index] => ref _drafts[index];

    public ReadOnlySpan<byte> EventJson(in EventDraft d) => _buffer.AsSpan(d.Start, d.Length);

    public void Clear()
    {
        _written = 0;
        Count = 0;
    }

    internal int Position => _written;

    internal ref EventDraft Add()
    {
        if (Count == _drafts.Length) Array.Resize(ref _drafts, _drafts.Length * 2);
        _drafts[Count] = default;
        return ref _drafts[Count++];
    }

    /// <summary>Drops the last draft and its bytes (a line that failed validation).</summary>
    internal void RemoveLast(int rewindTo)
    {
        Count--;
        _written = rewindTo;
    }

    internal void Write(ReadOnlySpan<byte> bytes)
    {
        EnsureCapacity(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_written));
        _written += bytes.Length;
    }

    internal void Write(byte b)
    {
        EnsureCapacity(1);
        _buffer[_written++] = b;
    }

    internal Span<byte> GetSpan(int sizeHint)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsSpan(_written);
    }

    internal void Advance(int count) => _written += count;

    private void EnsureCapacity(int extra)
    {
        if (_buffer.Length - _written >= extra) return;
        int size = Math.Max(_buffer.Length * 2, _written + extra);
        byte[] bigger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _written).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}
