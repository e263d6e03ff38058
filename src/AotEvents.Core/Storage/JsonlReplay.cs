using System.Buffers;
using AotEvents.Events;
using Microsoft.Win32.SafeHandles;

namespace AotEvents.Storage;

/// <summary>What <see cref="JsonlReplay.TryRead"/> produced.</summary>
public enum ReplayRead
{
    /// <summary>An envelope line: <see cref="ReplayItem.Seq"/>, <see cref="ReplayItem.Category"/>, <see cref="ReplayItem.Json"/>.</summary>
    Envelope,

    /// <summary>Seqs <see cref="ReplayItem.GapFrom"/>..<see cref="ReplayItem.GapTo"/> are in no file (deleted by retention).</summary>
    Gap,

    /// <summary>
    /// Everything up to <see cref="JsonlReplay.BoundSeq"/> was read (or, over a writer, only a hole is
    /// left before it, reported once the writer has written past the bound); <see cref="JsonlReplay.Refresh()"/> to go on.
    /// </summary>
    End,
}

/// <summary>One envelope or gap read back from the JSONL files.</summary>
public readonly struct ReplayItem
{
    internal ReplayItem(long seq, EventCategory category, ReadOnlyMemory<byte> json)
    {
        Seq = seq;
        Category = category;
        Json = json;
        GapFrom = GapTo = 0;
    }

    internal ReplayItem(long gapFrom, long gapTo)
    {
        Seq = 0;
        Category = default;
        Json = default;
        GapFrom = gapFrom;
        GapTo = gapTo;
    }

    public long Seq { get; }
    public EventCategory Category { get; }

    /// <summary>The envelope JSON without its newline. Valid until the next call on the replay.</summary>
    public ReadOnlyMemory<byte> Json { get; }

    public long GapFrom { get; }
    public long GapTo { get; }
    public long GapCount => GapTo - GapFrom + 1;
}

/// <summary>
/// A cursor over the JSONL files that yields envelopes with seq &gt; a start position in global seq
/// order: a k-way merge by seq of the per-category files, rotated segments included (SPEC §4, §5).
/// <list type="bullet">
/// <item>It never reads past <see cref="BoundSeq"/> (the writer's <c>WrittenSeq</c> when opened or
/// refreshed): every line up to it is whole on disk, lines after it may still be in flight.</item>
/// <item>Memory is bounded: each category streams through one small pooled buffer (grown only for
/// a longer line), whatever the number of events replayed. Lines are handed out as slices of
/// those buffers (no copy).</item>
/// <item>The start is found with the segments' sparse indexes: a binary search and a seek per
/// category, then at most one index stride of reading.</item>
/// <item>Seqs ≤ the bound that no file holds (their files were deleted by retention) are reported
/// as one <see cref="ReplayRead.Gap"/> per contiguous missing range, exactly once.</item>
/// </list>
/// Not thread-safe: one reader at a time.
/// </summary>
public sealed class JsonlReplay : IDisposable
{
    internal const int DefaultBufferBytes = 8 * 1024;

    private readonly SegmentCatalog _segments;
    private readonly JsonlWriter? _writer;
    private readonly CategoryStream?[] _streams = new CategoryStream?[EventVocabulary.CategoryCount];
    private readonly bool _reportGaps;
    private long _position;
    private long _bound;
    private long _bytesRead;
    private bool _disposed;

    private JsonlReplay(SegmentCatalog segments, JsonlWriter? writer, long afterSeq, long boundSeq, int categoryMask)
    {
        _segments = segments;
        _writer = writer;
        _position = Math.Max(0, afterSeq);
        _bound = boundSeq;
        _reportGaps = (categoryMask & EventVocabulary.AllCategoriesMask) == EventVocabulary.AllCategoriesMask;
        for (int c = 0; c < _streams.Length; c++)
        {
            if ((categoryMask & (1 << c)) != 0) _streams[c] = new CategoryStream(this, (EventCategory)c, _position);
        }
    }

    /// <summary>Replays what <paramref name="writer"/> has written after <paramref name="afterSeq"/>.</summary>
    public static JsonlReplay Open(JsonlWriter writer, long afterSeq, int categoryMask = EventVocabulary.AllCategoriesMask) =>
        new(writer.Segments, writer, afterSeq, writer.WrittenSeq, categoryMask);

    /// <summary>
    /// Replays the segments of <paramref name="segments"/> after <paramref name="afterSeq"/>, up to
    /// <paramref name="boundSeq"/>. Gaps are reported only when every category is read.
    /// </summary>
    public static JsonlReplay Open(SegmentCatalog segments, long afterSeq, long boundSeq,
        int categoryMask = EventVocabulary.AllCategoriesMask) =>
        new(segments, null, afterSeq, boundSeq, categoryMask);

    /// <summary>The last seq returned or covered by a gap.</summary>
    public long Position => _position;

    /// <summary>Highest seq this replay reads (until the next <see cref="Refresh(long)"/>).</summary>
    public long BoundSeq => _bound;

    /// <summary>Bytes read from segment files so far (index scans not included, see <see cref="SegmentCatalog.IndexBytesScanned"/>).</summary>
    public long BytesRead => _bytesRead;

    /// <summary>Moves the bound up to the writer's current <c>WrittenSeq</c>.</summary>
    public void Refresh() => Refresh(_writer?.WrittenSeq ?? _segments.HighestSeq);

    /// <summary>Moves the bound up to <paramref name="boundSeq"/>.</summary>
    public void Refresh(long boundSeq)
    {
        if (boundSeq <= _bound) return;
        _bound = boundSeq;
        foreach (var stream in _streams) stream?.Unblock();
    }

    /// <summary>
    /// Reads the next envelope in seq order, or reports a gap, or <see cref="ReplayRead.End"/> when
    /// everything up to <see cref="BoundSeq"/> was read. The item's <c>Json</c> stays valid until
    /// the next call.
    /// </summary>
    public ReplayRead TryRead(out ReplayItem item)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CategoryStream? best;
        while (true)
        {
            best = null;
            foreach (var stream in _streams)
            {
                if (stream is null || !stream.TryPeek()) continue;
                if (best is null || stream.HeadSeq < best.HeadSeq) best = stream;
            }
            // Nothing left up to the bound but a hole: the hole may go on past the bound (retention
            // deleted what a slow reader had not read yet). Look at what the writer has written since
            // before reporting it, so one run of missing seqs is one gap, not one per refresh.
            if (best is null && _reportGaps && _position < _bound && _writer is not null && _writer.WrittenSeq > _bound)
            {
                Refresh();
                continue;
            }
            break;
        }

        if (best is null)
        {
            if (_reportGaps && _position < _bound && _writer is not null)
            {
                // Over a live writer a hole is reported once its end is known (the next seq the files
                // hold): until the writer writes past the bound, End. The writer deletes old segments
                // while it writes, before it publishes the new WrittenSeq, so a hole that seems to end
                // at the bound may well go on, and reporting it now would split one run into two gaps.
                item = default;
                return ReplayRead.End;
            }
            if (_reportGaps && _position < _bound)
            {
                item = new ReplayItem(_position + 1, _bound);
                _position = _bound;
                return ReplayRead.Gap;
            }
            item = default;
            return ReplayRead.End;
        }

        long seq = best.HeadSeq;
        if (_reportGaps && seq > _position + 1)
        {
            item = new ReplayItem(_position + 1, seq - 1);
            _position = seq - 1;
            return ReplayRead.Gap;
        }
        item = new ReplayItem(seq, best.Category, best.Head);
        best.Consume();
        _position = seq;
        return ReplayRead.Envelope;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var stream in _streams) stream?.Dispose();
    }

    /// <summary>
    /// One category's lines in seq order across its segments, through one pooled buffer.
    /// </summary>
    private sealed class CategoryStream : IDisposable
    {
        private const int MaxBufferBytes = 4 * 1024 * 1024;

        private readonly JsonlReplay _owner;
        private JsonlSegment? _segment;
        private JsonlSegment? _previous;
        private SafeFileHandle? _handle;
        private byte[]? _buffer;
        private long _bufferOffset; // file offset of _buffer[0]
        private int _start;         // first unconsumed byte
        private int _end;           // end of valid bytes
        private bool _skipLine;     // discarding an oversized (corrupt) line up to its newline
        private bool _blocked;      // nothing more ≤ bound for now
        private long _lastSeq;
        private bool _hasHead;
        private int _headLength;

        public CategoryStream(JsonlReplay owner, EventCategory category, long startAfter)
        {
            _owner = owner;
            Category = category;
            _lastSeq = startAfter;
        }

        public EventCategory Category { get; }
        public long HeadSeq { get; private set; }
        public ReadOnlyMemory<byte> Head => _buffer.AsMemory(_start, _headLength);

        public void Unblock() => _blocked = false;

        public void Consume()
        {
            _start += _headLength + 1;
            _hasHead = false;
        }

        /// <summary>Makes the next line with seq in (last, bound] the head; false when there is none now.</summary>
        public bool TryPeek()
        {
            if (_hasHead) return true;
            if (_blocked) return false;
            while (true)
            {
                if (_segment is null && !TryAcquireSegment())
                {
                    _blocked = true;
                    return false;
                }

                if (TryTakeLine(out long seq, out int length))
                {
                    if (seq <= _lastSeq)
                    {
                        _start += length + 1; // before the start position, or a duplicate: skip
                        continue;
                    }
                    if (seq > _owner._bound)
                    {
                        Rewind(); // read it again after a refresh: bytes past the bound may still change
                        _blocked = true;
                        return false;
                    }
                    HeadSeq = seq;
                    _lastSeq = seq;
                    _headLength = length;
                    _hasHead = true;
                    return true;
                }

                bool sealedBefore = !_segment!.IsActive;
                if (ReadMore()) continue;

                // End of the file for now.
                if (sealedBefore)
                {
                    // A rotated segment never grows: go on with the next one.
                    CloseSegment();
                    continue;
                }
                if (!_segment.IsActive) continue; // rotated meanwhile: read to its real end once more
                Rewind(); // a partial line at the end of the active file is not ours yet
                _blocked = true;
                return false;
            }
        }

        private bool TryAcquireSegment()
        {
            SegmentCatalog catalog = _owner._segments;
            while (true)
            {
                JsonlSegment? next = _previous is null ? catalog.FindStart(Category, _lastSeq) : catalog.Next(_previous);
                if (next is null) return false;
                if (!catalog.TryOpen(next, out SafeFileHandle? handle))
                {
                    _previous = next; // deleted by retention: whatever it held is reported as a gap
                    continue;
                }
                _segment = next;
                _handle = handle;
                // Seek: the first line after _lastSeq is at most one index stride after this offset.
                long offset = 0;
                long first = next.FirstSeq;
                if (first > 0 && first <= _lastSeq)
                {
                    catalog.EnsureIndexed(next, handle!, _lastSeq, _owner._bound);
                    offset = next.Index.FindStart(_lastSeq);
                }
                _bufferOffset = offset;
                _start = _end = 0;
                _skipLine = false;
                return true;
            }
        }

        private void CloseSegment()
        {
            _handle?.Dispose();
            _handle = null;
            _previous = _segment;
            _segment = null;
            _start = _end = 0;
            ReturnBuffer();
        }

        /// <summary>Finds the next complete line in the buffer.</summary>
        private bool TryTakeLine(out long seq, out int length)
        {
            while (true)
            {
                int nl = _buffer is null ? -1 : _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
                if (nl < 0)
                {
                    seq = 0;
                    length = 0;
                    return false;
                }
                if (_skipLine)
                {
                    _start += nl + 1;
                    _skipLine = false;
                    continue;
                }
                length = nl;
                seq = JsonlRecovery.ReadSeqFast(_buffer.AsSpan(_start, nl));
                if (seq > 0) return true;
                _start += nl + 1; // not an envelope line: skip it
            }
        }

        /// <summary>Reads more of the segment into the buffer; false at its end.</summary>
        private bool ReadMore()
        {
            if (_buffer is null)
            {
                _buffer = ArrayPool<byte>.Shared.Rent(DefaultBufferBytes);
            }
            else if (_start > 0)
            {
                // Keep the unconsumed tail; shrink back after a long line.
                int remaining = _end - _start;
                byte[] target = _buffer.Length > DefaultBufferBytes && remaining <= DefaultBufferBytes / 2
                    ? ArrayPool<byte>.Shared.Rent(DefaultBufferBytes)
                    : _buffer;
                _buffer.AsSpan(_start, remaining).CopyTo(target);
                if (!ReferenceEquals(target, _buffer))
                {
                    ArrayPool<byte>.Shared.Return(_buffer);
                    _buffer = target;
                }
                _bufferOffset += _start;
                _start = 0;
                _end = remaining;
            }
            else if (_end == _buffer.Length)
            {
                if (_buffer.Length >= MaxBufferBytes)
                {
                    // No daemon-written line is this long: drop it up to its newline.
                    _bufferOffset += _end;
                    _start = _end = 0;
                    _skipLine = true;
                }
                else
                {
                    byte[] bigger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
                    _buffer.AsSpan(0, _end).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(_buffer);
                    _buffer = bigger;
                }
            }

            int n = RandomAccess.Read(_handle!, _buffer.AsSpan(_end), _bufferOffset + _end);
            if (n <= 0) return false;
            _end += n;
            _owner._bytesRead += n;
            return true;
        }

        /// <summary>Forgets buffered bytes from the first unconsumed one on; they are read again later.</summary>
        private void Rewind()
        {
            _bufferOffset += _start;
            _start = _end = 0;
            ReturnBuffer();
        }

        private void ReturnBuffer()
        {
            if (_buffer is null) return;
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }

        public void Dispose()
        {
            _handle?.Dispose();
            _handle = null;
            ReturnBuffer();
            _hasHead = false;
        }
    }
}
