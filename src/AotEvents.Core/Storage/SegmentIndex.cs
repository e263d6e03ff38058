using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace AotEvents.Storage;

/// <summary>
/// Sparse seq → byte offset index of one JSONL segment file: one entry (seq, offset of that line)
/// for the first line of the file and then for the first line starting at least
/// <see cref="Stride"/> bytes after the previous entry. Because a file is in seq order, finding the
/// first line after a seq is a binary search plus reading at most one stride.
/// <para>
/// The index covers the file up to <see cref="FrontierOffset"/>. The writer extends it as it appends
/// (no reads), a reader extends it by scanning when it finds it behind (a file that existed before the
/// daemon started), and a rotated segment's complete index is persisted as <c>&lt;category&gt;.&lt;n&gt;.idx</c>.
/// </para>
/// </summary>
/// <remarks>
/// File format (little endian): <c>"AEIX"</c>, u32 version (1), i64 segment length, i64 first seq,
/// i64 last seq, i32 stride, i32 entry count, then per entry i64 seq and i64 offset, then u64 CRC-32C
/// of everything before it. A file that is short, has another length recorded, or fails the checksum
/// is stale and rebuilt.
/// </remarks>
public sealed class SegmentIndex
{
    public const int DefaultStride = 64 * 1024;

    private const uint Magic = 0x58494541; // "AEIX"
    private const uint Version = 1;
    private const int HeaderBytes = 4 + 4 + 8 + 8 + 8 + 4 + 4;
    private const int ScanChunkBytes = 64 * 1024;

    private readonly object _lock = new();
    private long[] _seqs = new long[8];
    private long[] _offsets = new long[8];
    private int _count;
    private long _frontierOffset;
    private long _frontierSeq;

    public SegmentIndex(int stride = DefaultStride)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        Stride = stride;
    }

    public int Stride { get; }

    /// <summary>Number of entries.</summary>
    public int Count
    {
        get
        {
            lock (_lock) return _count;
        }
    }

    /// <summary>Bytes [0, FrontierOffset) of the file are indexed.</summary>
    public long FrontierOffset
    {
        get
        {
            lock (_lock) return _frontierOffset;
        }
    }

    /// <summary>Seq of the last line before <see cref="FrontierOffset"/> (0 when none).</summary>
    public long FrontierSeq
    {
        get
        {
            lock (_lock) return _frontierSeq;
        }
    }

    /// <summary>
    /// True when a lookup for lines after <paramref name="afterSeq"/> needs no scan: the indexed
    /// part reaches past that seq or covers the whole <paramref name="fileLength"/>.
    /// </summary>
    public bool Covers(long afterSeq, long fileLength)
    {
        lock (_lock) return _frontierSeq > afterSeq || _frontierOffset >= fileLength;
    }

    /// <summary>
    /// The offset of a line start from which the first line with seq &gt; <paramref name="afterSeq"/>
    /// is at most one stride (plus one line) away: binary search for the last entry ≤ afterSeq.
    /// </summary>
    public long FindStart(long afterSeq)
    {
        lock (_lock)
        {
            int lo = 0, hi = _count - 1, found = -1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_seqs[mid] <= afterSeq)
                {
                    found = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }
            return found < 0 ? 0 : _offsets[found];
        }
    }

    /// <summary>Entry i as (seq, offset), for tests and diagnostics.</summary>
    public (long Seq, long Offset) this[int i]
    {
        get
        {
            lock (_lock)
            {
                ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, _count);
                return (_seqs[i], _offsets[i]);
            }
        }
    }

    /// <summary>
    /// Writer side: lines were appended at <paramref name="startOffset"/>. Extends the index when it
    /// ends exactly there; otherwise (a prefix never scanned since start) it leaves the gap to a
    /// reader's scan. No I/O; readers hold the lock only for a lookup or a merge, never for a scan.
    /// </summary>
    internal void Appended(List<ReadOnlyMemory<byte>> lines, long startOffset)
    {
        lock (_lock)
        {
            if (_frontierOffset != startOffset) return;
            long offset = startOffset;
            long lastSeq = _frontierSeq;
            foreach (ReadOnlyMemory<byte> line in lines)
            {
                if (_count == 0 || offset - _offsets[_count - 1] >= Stride)
                {
                    long seq = JsonlRecovery.ReadSeqFast(line.Span);
                    if (seq > 0) Add(seq, offset);
                }
                offset += line.Length;
            }
            if (lines.Count > 0)
            {
                long seq = JsonlRecovery.ReadSeqFast(lines[^1].Span);
                if (seq > 0) lastSeq = seq;
            }
            _frontierOffset = offset;
            _frontierSeq = lastSeq;
        }
    }

    private void Add(long seq, long offset)
    {
        if (_count == _seqs.Length)
        {
            Array.Resize(ref _seqs, _count * 2);
            Array.Resize(ref _offsets, _count * 2);
        }
        _seqs[_count] = seq;
        _offsets[_count] = offset;
        _count++;
    }

    /// <summary>
    /// Reader side: scans the file from the frontier over complete lines with seq ≤
    /// <paramref name="boundSeq"/> (up to <paramref name="fileLength"/>) and merges what it found.
    /// The scan runs outside the lock, so the writer is never held up by it. Returns the bytes read.
    /// </summary>
    internal long Extend(SafeFileHandle handle, long fileLength, long boundSeq)
    {
        long start, lastEntryOffset;
        lock (_lock)
        {
            start = _frontierOffset;
            lastEntryOffset = _count == 0 ? -1 : _offsets[_count - 1];
        }
        if (start >= fileLength) return 0;

        var seqs = new List<long>();
        var offsets = new List<long>();
        long frontier = start, frontierSeq = 0, bytesRead = 0;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ScanChunkBytes);
        try
        {
            long bufferOffset = start; // file offset of buffer[0]
            int filled = 0;
            bool stop = false;
            while (!stop && bufferOffset + filled < fileLength)
            {
                if (filled == buffer.Length) Grow(ref buffer, filled);
                int want = (int)Math.Min(buffer.Length - filled, fileLength - bufferOffset - filled);
                int n = RandomAccess.Read(handle, buffer.AsSpan(filled, want), bufferOffset + filled);
                if (n <= 0) break;
                bytesRead += n;
                filled += n;
                int pos = 0;
                while (true)
                {
                    int nl = buffer.AsSpan(pos, filled - pos).IndexOf((byte)'\n');
                    if (nl < 0) break;
                    ReadOnlySpan<byte> line = buffer.AsSpan(pos, nl);
                    long seq = JsonlRecovery.ReadSeqFast(line);
                    if (seq > boundSeq)
                    {
                        stop = true;
                        break;
                    }
                    long lineOffset = bufferOffset + pos;
                    if (seq > 0)
                    {
                        long previous = offsets.Count > 0 ? offsets[^1] : lastEntryOffset;
                        if (previous < 0 || lineOffset - previous >= Stride)
                        {
                            seqs.Add(seq);
                            offsets.Add(lineOffset);
                        }
                        frontierSeq = seq;
                    }
                    pos += nl + 1;
                    frontier = bufferOffset + pos;
                }
                // Keep the partial line at the start of the buffer.
                buffer.AsSpan(pos, filled - pos).CopyTo(buffer);
                bufferOffset += pos;
                filled -= pos;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        lock (_lock)
        {
            if (frontier > _frontierOffset)
            {
                long last = _count == 0 ? -1 : _offsets[_count - 1];
                for (int i = 0; i < seqs.Count; i++)
                {
                    if (offsets[i] > last) Add(seqs[i], offsets[i]);
                }
                _frontierOffset = frontier;
                if (frontierSeq > 0) _frontierSeq = frontierSeq;
            }
        }
        return bytesRead;
    }

    private static void Grow(ref byte[] buffer, int keep)
    {
        byte[] bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
        buffer.AsSpan(0, keep).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(buffer);
        buffer = bigger;
    }

    /// <summary>Writes the index next to its rotated segment (temp file + rename). Best effort: a cache.</summary>
    internal void Save(string path, long segmentLength, long firstSeq, long lastSeq)
    {
        byte[] bytes;
        lock (_lock)
        {
            bytes = new byte[HeaderBytes + _count * 16 + 8];
            Span<byte> w = bytes;
            BinaryPrimitives.WriteUInt32LittleEndian(w, Magic);
            BinaryPrimitives.WriteUInt32LittleEndian(w[4..], Version);
            BinaryPrimitives.WriteInt64LittleEndian(w[8..], segmentLength);
            BinaryPrimitives.WriteInt64LittleEndian(w[16..], firstSeq);
            BinaryPrimitives.WriteInt64LittleEndian(w[24..], lastSeq);
            BinaryPrimitives.WriteInt32LittleEndian(w[32..], Stride);
            BinaryPrimitives.WriteInt32LittleEndian(w[36..], _count);
            for (int i = 0; i < _count; i++)
            {
                BinaryPrimitives.WriteInt64LittleEndian(w[(HeaderBytes + i * 16)..], _seqs[i]);
                BinaryPrimitives.WriteInt64LittleEndian(w[(HeaderBytes + i * 16 + 8)..], _offsets[i]);
            }
        }
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8), Checksum(bytes.AsSpan(0, bytes.Length - 8)));
        string temp = path + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Loads a persisted index; null when it is missing or stale (other segment length, torn, corrupt).
    /// </summary>
    internal static SegmentIndex? TryLoad(string path, long segmentLength, out long firstSeq, out long lastSeq)
    {
        firstSeq = lastSeq = 0;
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length < HeaderBytes + 8 || info.Length > 64L * 1024 * 1024) return null;
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        ReadOnlySpan<byte> r = bytes;
        if (BinaryPrimitives.ReadUInt32LittleEndian(r) != Magic ||
            BinaryPrimitives.ReadUInt32LittleEndian(r[4..]) != Version ||
            BinaryPrimitives.ReadInt64LittleEndian(r[8..]) != segmentLength)
            return null;
        int stride = BinaryPrimitives.ReadInt32LittleEndian(r[32..]);
        int count = BinaryPrimitives.ReadInt32LittleEndian(r[36..]);
        if (stride < 1 || count < 0 || bytes.Length != HeaderBytes + (long)count * 16 + 8) return null;
        if (BinaryPrimitives.ReadUInt64LittleEndian(r[^8..]) != Checksum(r[..^8])) return null;

        var index = new SegmentIndex(stride);
        index._seqs = new long[Math.Max(count, 8)];
        index._offsets = new long[Math.Max(count, 8)];
        for (int i = 0; i < count; i++)
        {
            long seq = BinaryPrimitives.ReadInt64LittleEndian(r[(HeaderBytes + i * 16)..]);
            long offset = BinaryPrimitives.ReadInt64LittleEndian(r[(HeaderBytes + i * 16 + 8)..]);
            if (offset < 0 || offset >= segmentLength || (i > 0 && (seq <= index._seqs[i - 1] || offset <= index._offsets[i - 1])))
                return null;
            index._seqs[i] = seq;
            index._offsets[i] = offset;
        }
        index._count = count;
        firstSeq = BinaryPrimitives.ReadInt64LittleEndian(r[16..]);
        lastSeq = BinaryPrimitives.ReadInt64LittleEndian(r[24..]);
        index._frontierOffset = segmentLength;
        index._frontierSeq = lastSeq;
        return index;
    }

    /// <summary>CRC-32C of the index body (hardware <see cref="System.Numerics.BitOperations.Crc32C(uint, ulong)"/>;
    /// System.IO.Hashing is not on the package source), stored in the trailing u64.</summary>
    private static ulong Checksum(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        while (data.Length >= 8)
        {
            crc = System.Numerics.BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = System.Numerics.BitOperations.Crc32C(crc, b);
        return ~crc;
    }
}
