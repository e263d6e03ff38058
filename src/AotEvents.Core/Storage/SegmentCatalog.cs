using System.Buffers;
using AotEvents.Events;
using Microsoft.Win32.SafeHandles;

namespace AotEvents.Storage;

/// <summary>
/// One JSONL segment file: the active <c>&lt;category&gt;.log</c> or a rotated
/// <c>&lt;category&gt;.&lt;n&gt;.log</c>. Its identity is stable across rotation (the path changes, the
/// object does not), so a reader that holds it knows where to continue.
/// </summary>
public sealed class JsonlSegment
{
    private volatile string _path;
    private volatile int _number;
    private long _firstSeq;
    private long _lastSeq;
    private long _length;
    private volatile bool _deleted;
    private int _indexSaved;

    internal JsonlSegment(EventCategory category, int number, string path, long ordinal, SegmentIndex index)
    {
        Category = category;
        _number = number;
        _path = path;
        Ordinal = ordinal;
        Index = index;
    }

    public EventCategory Category { get; }

    /// <summary>0 for the active segment, else the rotated number (larger = newer).</summary>
    public int Number => _number;

    public bool IsActive => _number == 0;

    public string Path => _path;

    /// <summary>Seq of the first line (0 while the segment is empty).</summary>
    public long FirstSeq => Volatile.Read(ref _firstSeq);

    /// <summary>Seq of the last line written (0 while empty).</summary>
    public long LastSeq => Volatile.Read(ref _lastSeq);

    /// <summary>Bytes of complete lines written.</summary>
    public long Length => Volatile.Read(ref _length);

    public bool IsDeleted => _deleted;

    public SegmentIndex Index { get; private set; }

    /// <summary>Order of the segment within its category (older = smaller).</summary>
    internal long Ordinal { get; }

    internal string IndexPath => System.IO.Path.ChangeExtension(_path, ".idx");

    internal void SetFirstSeq(long seq) => Volatile.Write(ref _firstSeq, seq);

    internal void SetLastSeq(long seq) => Volatile.Write(ref _lastSeq, seq);

    internal void SetLength(long length) => Volatile.Write(ref _length, length);

    internal void Rename(int number, string path)
    {
        _path = path;
        _number = number;
    }

    internal void MarkDeleted() => _deleted = true;

    internal void ReplaceIndex(SegmentIndex index) => Index = index;

    /// <summary>True once for the caller that gets to persist the index.</summary>
    internal bool TryClaimIndexSave() => Interlocked.Exchange(ref _indexSaved, 1) == 0;

    internal void IndexSaved() => Volatile.Write(ref _indexSaved, 1);
}

/// <summary>
/// The JSONL segment files of a data directory, per category in seq order, with their first/last
/// seq, size and sparse index. The writer updates it as it appends, rotates and deletes; readers
/// (replay, archive) look segments up and open them through it. Renames, deletions and reader opens
/// happen under one short lock, so a reader never opens a path that is being renamed away, and a
/// file it has open stays readable after rotation or deletion (POSIX semantics).
/// </summary>
public sealed class SegmentCatalog
{
    private readonly object _lock = new();
    private readonly List<JsonlSegment>[] _segments = new List<JsonlSegment>[EventVocabulary.CategoryCount];
    private readonly int[] _maxNumber = new int[EventVocabulary.CategoryCount];
    private readonly Action<string> _log;
    private long _nextOrdinal;
    private long _totalBytes;
    private long _indexBytesScanned;
    private int _unindexed;

    private SegmentCatalog(string dataDir, int indexStride, Action<string> log)
    {
        DataDir = dataDir;
        IndexStride = indexStride;
        _log = log;
        for (int i = 0; i < _segments.Length; i++) _segments[i] = new List<JsonlSegment>();
    }

    public string DataDir { get; }

    public int IndexStride { get; }

    /// <summary>Total size of the JSONL segment files (index files not counted).</summary>
    public long TotalBytes => Interlocked.Read(ref _totalBytes);

    /// <summary>Bytes read to build indexes lazily (0 when every lookup found its index ready).</summary>
    public long IndexBytesScanned => Interlocked.Read(ref _indexBytesScanned);

    /// <summary>
    /// Reads the segment list of a data directory: persisted indexes of rotated segments are loaded
    /// when valid; a missing or stale one is rebuilt on first use and persisted again. Reads only a
    /// segment's first and last line otherwise.
    /// </summary>
    public static SegmentCatalog Open(string dataDir, Action<string>? log = null, int indexStride = SegmentIndex.DefaultStride)
    {
        var catalog = new SegmentCatalog(dataDir, indexStride, log ?? (_ => { }));
        for (int c = 0; c < EventVocabulary.CategoryCount; c++)
        {
            var category = (EventCategory)c;
            foreach (var (number, path) in JsonlFiles.RotatedSegments(dataDir, category))
            {
                catalog.LoadExisting(category, number, path);
                catalog._maxNumber[c] = Math.Max(catalog._maxNumber[c], number);
            }
            string active = JsonlFiles.ActivePath(dataDir, category);
            if (File.Exists(active)) catalog.LoadExisting(category, 0, active);
        }
        if (catalog._unindexed > 0)
            catalog._log($"{catalog._unindexed} rotated JSONL files have a missing or stale index; each is rebuilt on first use");
        return catalog;
    }

    private void LoadExisting(EventCategory category, int number, string path)
    {
        long length;
        try
        {
            length = new FileInfo(path).Length;
        }
        catch (IOException)
        {
            return;
        }
        var segment = new JsonlSegment(category, number, path, _nextOrdinal++, new SegmentIndex(IndexStride));
        segment.SetLength(length);
        try
        {
            using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long first = ReadFirstSeq(handle, length);
            long last = 0;
            if (number > 0 && SegmentIndex.TryLoad(segment.IndexPath, length, out long idxFirst, out long idxLast) is { } index &&
                idxFirst == first)
            {
                segment.ReplaceIndex(index);
                segment.IndexSaved();
                last = idxLast;
            }
            else if (length > 0)
            {
                last = ReadLastSeq(handle, length);
                if (number > 0) _unindexed++;
            }
            segment.SetFirstSeq(first);
            segment.SetLastSeq(last);
        }
        catch (IOException e)
        {
            _log($"cannot read {path}: {e.Message}");
        }
        _segments[(int)category].Add(segment);
        _totalBytes += length;
    }

    /// <summary>Seq of the first complete line (0 when none).</summary>
    private static long ReadFirstSeq(SafeFileHandle handle, long length)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            int filled = 0;
            while (filled < length)
            {
                if (filled == buffer.Length)
                {
                    byte[] bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                int n = RandomAccess.Read(handle, buffer.AsSpan(filled, (int)Math.Min(buffer.Length - filled, length - filled)), filled);
                if (n <= 0) break;
                int nl = buffer.AsSpan(filled, n).IndexOf((byte)'\n');
                filled += n;
                if (nl >= 0) return JsonlRecovery.ReadSeqFast(buffer.AsSpan(0, filled - n + nl));
            }
            return 0;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Seq of the last complete line (0 when none).</summary>
    private static long ReadLastSeq(SafeFileHandle handle, long length)
    {
        // Daemon lines are at most ~1 MB; read backwards until the start of the last line is found.
        int size = 4096;
        while (true)
        {
            int want = (int)Math.Min(size, length);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(want);
            try
            {
                int n = RandomAccess.Read(handle, buffer.AsSpan(0, want), length - want);
                ReadOnlySpan<byte> tail = buffer.AsSpan(0, n);
                int end = tail.LastIndexOf((byte)'\n');
                if (end < 0) return 0;
                int start = tail[..end].LastIndexOf((byte)'\n') + 1;
                if (start > 0 || want == length) return JsonlRecovery.ReadSeqFast(tail[start..end]);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            if (size >= 8 * 1024 * 1024) return 0;
            size *= 4;
        }
    }

    // ---- writer side -------------------------------------------------------------------------

    /// <summary>The active segment of a category, registered when the writer opens <c>&lt;category&gt;.log</c>.</summary>
    internal JsonlSegment OpenActive(EventCategory category, long fileLength)
    {
        lock (_lock)
        {
            List<JsonlSegment> list = _segments[(int)category];
            if (list.Count > 0 && list[^1].IsActive) return list[^1];
            var segment = new JsonlSegment(category, 0, JsonlFiles.ActivePath(DataDir, category), _nextOrdinal++,
                new SegmentIndex(IndexStride));
            segment.SetLength(fileLength);
            list.Add(segment);
            _totalBytes += fileLength;
            return segment;
        }
    }

    /// <summary>
    /// Called by the writer after a batch was written whole: these lines now are at
    /// <paramref name="startOffset"/> of the segment. Updates first/last seq, length and the index.
    /// </summary>
    internal void Appended(JsonlSegment segment, List<ReadOnlyMemory<byte>> lines, long startOffset)
    {
        if (lines.Count == 0) return;
        long bytes = 0;
        foreach (var line in lines) bytes += line.Length;
        segment.Index.Appended(lines, startOffset);
        lock (_lock)
        {
            if (segment.FirstSeq == 0) segment.SetFirstSeq(JsonlRecovery.ReadSeqFast(lines[0].Span));
            long last = JsonlRecovery.ReadSeqFast(lines[^1].Span);
            if (last > 0) segment.SetLastSeq(last);
            long length = startOffset + bytes;
            _totalBytes += length - segment.Length;
            segment.SetLength(length);
        }
    }

    /// <summary>
    /// Renames the active segment to the next rotated number (under the lock readers open files
    /// with) and persists its index when complete.
    /// </summary>
    internal void Rotate(JsonlSegment segment)
    {
        int c = (int)segment.Category;
        lock (_lock)
        {
            int number = _maxNumber[c] + 1;
            string path = JsonlFiles.RotatedPath(DataDir, segment.Category, number);
            File.Move(segment.Path, path);
            _maxNumber[c] = number;
            segment.Rename(number, path);
        }
        TrySaveIndex(segment);
    }

    /// <summary>Persists a rotated segment's index once it is complete (best effort; it is a cache).</summary>
    internal void TrySaveIndex(JsonlSegment segment)
    {
        if (segment.IsActive || segment.IsDeleted) return;
        if (segment.Index.FrontierOffset < segment.Length) return;
        if (!segment.TryClaimIndexSave()) return;
        try
        {
            segment.Index.Save(segment.IndexPath, segment.Length, segment.FirstSeq, segment.LastSeq);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log($"cannot write JSONL index {segment.IndexPath}: {e.Message}");
        }
    }

    /// <summary>Rotated segments of every category, oldest first by first seq (retention candidates).</summary>
    internal List<JsonlSegment> RotatedByFirstSeq()
    {
        var result = new List<JsonlSegment>();
        lock (_lock)
        {
            foreach (var list in _segments)
            {
                foreach (var s in list)
                {
                    if (!s.IsActive) result.Add(s);
                }
            }
        }
        result.Sort(static (a, b) => a.FirstSeq.CompareTo(b.FirstSeq));
        return result;
    }

    /// <summary>Deletes a rotated segment and its index. Readers that have it open finish reading it.</summary>
    internal void Delete(JsonlSegment segment)
    {
        if (segment.IsActive) throw new InvalidOperationException("the active segment is never deleted");
        lock (_lock)
        {
            if (segment.IsDeleted) return;
            File.Delete(segment.Path);
            segment.MarkDeleted();
            _segments[(int)segment.Category].Remove(segment);
            _totalBytes -= segment.Length;
        }
        try
        {
            File.Delete(segment.IndexPath);
        }
        catch (IOException)
        {
            // An orphaned index is harmless: it is validated against its segment before use.
        }
    }

    // ---- reader side -------------------------------------------------------------------------

    /// <summary>Lowest seq held in any segment; 0 when no segment holds a line.</summary>
    public long LowestRetainedSeq
    {
        get
        {
            long lowest = 0;
            lock (_lock)
            {
                foreach (var list in _segments)
                {
                    foreach (var s in list)
                    {
                        long first = s.FirstSeq;
                        if (first <= 0) continue;
                        if (lowest == 0 || first < lowest) lowest = first;
                        break; // segments of a category are in seq order
                    }
                }
            }
            return lowest;
        }
    }

    /// <summary>Highest seq in any segment (0 when none).</summary>
    public long HighestSeq
    {
        get
        {
            long highest = 0;
            lock (_lock)
            {
                foreach (var list in _segments)
                {
                    for (int i = list.Count - 1; i >= 0; i--)
                    {
                        if (list[i].LastSeq <= 0) continue;
                        highest = Math.Max(highest, list[i].LastSeq);
                        break;
                    }
                }
            }
            return highest;
        }
    }

    /// <summary>A snapshot of a category's segments, oldest first.</summary>
    public List<JsonlSegment> Segments(EventCategory category)
    {
        lock (_lock) return new List<JsonlSegment>(_segments[(int)category]);
    }

    /// <summary>
    /// The segment of <paramref name="category"/> to start reading at for seqs after
    /// <paramref name="afterSeq"/>: the last one whose first seq is ≤ afterSeq + 1, else the oldest.
    /// </summary>
    internal JsonlSegment? FindStart(EventCategory category, long afterSeq)
    {
        lock (_lock)
        {
            List<JsonlSegment> list = _segments[(int)category];
            JsonlSegment? start = null;
            foreach (var s in list)
            {
                long first = s.FirstSeq;
                if (first <= 0) continue;
                if (first > afterSeq + 1) break;
                start = s;
            }
            return start ?? (list.Count > 0 ? list[0] : null);
        }
    }

    /// <summary>The segment after <paramref name="segment"/> in its category (null when none yet).</summary>
    internal JsonlSegment? Next(JsonlSegment segment)
    {
        lock (_lock)
        {
            foreach (var s in _segments[(int)segment.Category])
            {
                if (s.Ordinal > segment.Ordinal) return s;
            }
            return null;
        }
    }

    /// <summary>Opens a segment for reading; false when retention deleted it.</summary>
    internal bool TryOpen(JsonlSegment segment, out SafeFileHandle? handle)
    {
        lock (_lock)
        {
            handle = null;
            if (segment.IsDeleted) return false;
            try
            {
                handle = File.OpenHandle(segment.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                return true;
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Makes the segment's index cover lookups after <paramref name="afterSeq"/>, scanning the
    /// unindexed part once if needed (and persisting a rotated segment's completed index).
    /// </summary>
    internal void EnsureIndexed(JsonlSegment segment, SafeFileHandle handle, long afterSeq, long boundSeq)
    {
        long length = segment.Length;
        if (segment.Index.Covers(afterSeq, length)) return;
        long scanned = segment.Index.Extend(handle, length, segment.IsActive ? boundSeq : long.MaxValue);
        Interlocked.Add(ref _indexBytesScanned, scanned);
        TrySaveIndex(segment);
    }
}
