using System.Diagnostics;
using AotEvents.Events;
using Microsoft.Win32.SafeHandles;

namespace AotEvents.Storage;

public sealed class JsonlWriterOptions
{
    public required string DataDir { get; init; }

    /// <summary>Longest time written bytes wait for fsync (SPEC §5: 200 ms).</summary>
    public TimeSpan FsyncInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Bound of the write queue; publishers wait (back-pressure) while it is full.</summary>
    public long MaxQueueBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>Size at which <c>&lt;category&gt;.log</c> is rotated.</summary>
    public long SegmentBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>How long to wait before retrying after a failed write (disk full).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Total size of the JSONL files kept (SPEC §5 <c>EVENTS_MAX_DISK_BYTES</c>): above it the oldest
    /// rotated segments are deleted (see <see cref="RetentionPolicy"/>).
    /// </summary>
    public long MaxDiskBytes { get; init; } = 1024L * 1024 * 1024;

    /// <summary>
    /// Highest seq S2 acknowledged, when S2 shipping is configured: a rotated segment holding a
    /// later seq is not deleted. Can also be set later through <see cref="JsonlWriter.ShippedSeq"/>.
    /// </summary>
    public Func<long>? ShippedSeq { get; init; }

    /// <summary>Bytes between two entries of a segment's sparse seq → offset index.</summary>
    public int IndexStride { get; init; } = SegmentIndex.DefaultStride;
}

/// <summary>
/// Appends envelopes to the per-category JSONL files on its own thread with group commit: it takes
/// everything queued, writes each file with one gathered write, fsyncs at least every
/// <see cref="JsonlWriterOptions.FsyncInterval"/> or at once when an <c>ack=disk</c> publisher waits,
/// and completes every waiter the fsync covers with one shared task. Lines are whole envelopes plus
/// '\n' written in seq order; a failed write (disk full) keeps the batch, truncates the partial
/// bytes away and retries, so accepted events are never lost.
/// </summary>
public sealed class JsonlWriter : IDisposable
{
    private readonly JsonlWriterOptions _options;
    private readonly Action<string> _log;
    private readonly object _queueLock = new();
    // The queue and the batch swap on every write; each doubles when a burst outgrows it, so an idle
    // daemon holds two small arrays rather than two of 1024 envelopes (80 KiB).
    private Envelope[] _queue = new Envelope[64];
    private int _queueCount;
    private Envelope[] _batch = new Envelope[64];
    private long _queuedBytes;
    private bool _writerWaiting;
    private bool _stopping;
    private bool _disposed;
    private bool _fsyncRequested;
    private TaskCompletionSource? _nextFsync;
    private TaskCompletionSource? _flushWaiters;

    private readonly SegmentFile?[] _files = new SegmentFile?[EventVocabulary.CategoryCount];
    /// <summary>How long lines gather after a write before the next one (see the end of the writer loop).</summary>
    private const int GatherWindowMilliseconds = 4;

    private readonly List<ReadOnlyMemory<byte>>[] _gather = new List<ReadOnlyMemory<byte>>[EventVocabulary.CategoryCount];
    private readonly Thread _thread;
    private long _writtenSeq;
    private long _durableSeq;
    private long _enqueuedSeq; // highest seq handed to Enqueue; guarded by _queueLock
    private volatile Exception? _fault;

    public JsonlWriter(JsonlWriterOptions options, long recoveredLastSeq, Action<string> log)
    {
        _options = options;
        _log = log;
        _writtenSeq = _durableSeq = _enqueuedSeq = recoveredLastSeq;
        for (int i = 0; i < _gather.Length; i++) _gather[i] = new List<ReadOnlyMemory<byte>>();
        JsonlFiles.PrepareDataDir(options.DataDir); // an unusable directory fails the start, with the reason
        Segments = SegmentCatalog.Open(options.DataDir, log, options.IndexStride);
        ShippedSeq = options.ShippedSeq;
        Written += _ =>
        {
            if (Volatile.Read(ref _writtenWaiters) is not null) WakeWrittenWaiters();
        };
        _thread = new Thread(Run) { IsBackground = true, Name = "jsonl-writer" };
        _thread.Start();
    }

    /// <summary>Highest seq written to the files (not necessarily fsync'd).</summary>
    public long WrittenSeq => Interlocked.Read(ref _writtenSeq);

    /// <summary>Highest seq fsync'd.</summary>
    public long DurableSeq => Interlocked.Read(ref _durableSeq);

    /// <summary>The last write failure while it persists (disk full, read-only); null when healthy.</summary>
    public Exception? Fault => _fault;

    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>Envelopes written since start.</summary>
    public long WrittenCount => Interlocked.Read(ref _writtenCount);

    private long _writtenCount;

    /// <summary>Raised on the writer thread after envelopes up to the given seq were written (not fsync'd).</summary>
    public event Action<long>? Written;

    /// <summary>The segment files with their sparse indexes (what replay and archive reads use).</summary>
    public SegmentCatalog Segments { get; }

    /// <summary>
    /// Highest seq S2 acknowledged while S2 shipping is configured (null otherwise): retention keeps
    /// rotated segments holding later seqs, even over <see cref="JsonlWriterOptions.MaxDiskBytes"/>.
    /// </summary>
    public Func<long>? ShippedSeq { get; set; }

    /// <summary>
    /// Lowest seq still in the files (older ones were deleted by retention); <see cref="WrittenSeq"/>
    /// + 1 when the files hold none.
    /// </summary>
    public long LowestRetainedSeq
    {
        get
        {
            long written = WrittenSeq;
            long lowest = Segments.LowestRetainedSeq;
            return lowest > 0 && lowest <= written ? lowest : written + 1;
        }
    }

    /// <summary>Rotated segment files deleted by retention since start.</summary>
    public long DeletedSegments => Interlocked.Read(ref _deletedSegments);

    private long _deletedSegments;
    private bool _retentionBlocked;
    private bool _unshippedLogged;
    private bool _activeOnlyLogged;
    private long _nextBlockedRetentionCheck;
    private TaskCompletionSource? _writtenWaiters;
    private readonly object _writtenWaitLock = new();

    /// <summary>
    /// Completes once envelopes up to <paramref name="seq"/> are written to the files (not
    /// necessarily fsync'd); faults with <see cref="ObjectDisposedException"/> when the writer closed
    /// before. Waiters share one task per write, created only while someone waits.
    /// </summary>
    public Task WaitWrittenAsync(long seq) => WrittenSeq >= seq ? Task.CompletedTask : WaitWrittenSlowAsync(seq);

    private async Task WaitWrittenSlowAsync(long seq)
    {
        while (true)
        {
            Task next;
            lock (_writtenWaitLock)
            {
                if (WrittenSeq >= seq) return;
                if (Volatile.Read(ref _disposed) && !_thread.IsAlive) throw new ObjectDisposedException(nameof(JsonlWriter));
                _writtenWaiters ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                next = _writtenWaiters.Task;
            }
            if (WrittenSeq >= seq) return; // written between the check and the registration
            await next.ConfigureAwait(false);
        }
    }

    private void WakeWrittenWaiters()
    {
        TaskCompletionSource? waiters;
        lock (_writtenWaitLock)
        {
            waiters = _writtenWaiters;
            _writtenWaiters = null;
        }
        waiters?.TrySetResult();
    }

    /// <summary>Blocks the calling publisher while the queue is over its byte bound.</summary>
    public void WaitForRoom()
    {
        if (Interlocked.Read(ref _queuedBytes) <= _options.MaxQueueBytes) return;
        lock (_queueLock)
        {
            while (_queuedBytes > _options.MaxQueueBytes && !_disposed) Monitor.Wait(_queueLock, 50);
        }
    }

    /// <summary>Queues an envelope; callers enqueue in seq order. Never blocks on I/O.</summary>
    public void Enqueue(in Envelope envelope)
    {
        lock (_queueLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_queueCount == _queue.Length) Array.Resize(ref _queue, _queue.Length * 2);
            _queue[_queueCount++] = envelope;
            _queuedBytes += envelope.Line.Length;
            _enqueuedSeq = envelope.Seq;
            if (_writerWaiting) Monitor.Pulse(_queueLock);
        }
    }

    /// <summary>Completes once <paramref name="seq"/> is on disk and fsync'd (group commit).</summary>
    public Task WaitDurableAsync(long seq)
    {
        if (DurableSeq >= seq) return Task.CompletedTask;
        Task task;
        lock (_queueLock)
        {
            if (_disposed && _durableSeq < seq)
                return Task.FromException(new ObjectDisposedException(nameof(JsonlWriter)));
            _nextFsync ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            task = _nextFsync.Task;
            _fsyncRequested = true;
            if (_writerWaiting) Monitor.Pulse(_queueLock);
        }
        return task;
    }

    /// <summary>Writes and fsyncs everything queued so far.</summary>
    public Task FlushAsync()
    {
        lock (_queueLock)
        {
            // Compare with the last enqueued seq, not the queue length: a batch the writer has already
            // taken but not yet written leaves the queue empty while nothing of it is on disk.
            if (Interlocked.Read(ref _durableSeq) >= _enqueuedSeq && _fault is null) return Task.CompletedTask;
            if (_disposed) return Task.FromException(new ObjectDisposedException(nameof(JsonlWriter)));
            _flushWaiters ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _fsyncRequested = true;
            if (_writerWaiting) Monitor.Pulse(_queueLock);
            return _flushWaiters.Task;
        }
    }

    private void Run()
    {
        var sinceFsync = Stopwatch.StartNew();
        bool dirty = false;
        while (true)
        {
            int count;
            bool fsyncNow;
            TaskCompletionSource? durableWaiters, flushWaiters;
            lock (_queueLock)
            {
                while (_queueCount == 0 && !_fsyncRequested && !_stopping &&
                       !(dirty && sinceFsync.Elapsed >= _options.FsyncInterval))
                {
                    _writerWaiting = true;
                    // Clean: sleep until woken (Infinite is -1 ms, so it must not be clamped to 0,
                    // which would spin a core). Dirty: sleep until the fsync is due.
                    TimeSpan wait = Timeout.InfiniteTimeSpan;
                    if (dirty)
                    {
                        wait = _options.FsyncInterval - sinceFsync.Elapsed;
                        if (wait < TimeSpan.Zero) wait = TimeSpan.Zero;
                    }
                    Monitor.Wait(_queueLock, wait);
                    _writerWaiting = false;
                }
                (_batch, _queue) = (_queue, _batch);
                count = _queueCount;
                _queueCount = 0;
                // Waiters registered so far have their envelopes in this batch (they enqueue first).
                fsyncNow = _fsyncRequested || _stopping;
                _fsyncRequested = false;
                durableWaiters = _nextFsync;
                _nextFsync = null;
                flushWaiters = _flushWaiters;
                _flushWaiters = null;
                if (_stopping && count == 0 && !dirty)
                {
                    durableWaiters?.TrySetResult();
                    flushWaiters?.TrySetResult();
                    break;
                }
            }

            long batchBytes = 0;
            for (int i = 0; i < count; i++) batchBytes += _batch[i].Line.Length;
            while (!TryWriteBatch(count))
            {
                if (Volatile.Read(ref _stopping) && _disposeDeadline < DateTime.UtcNow) break;
                Thread.Sleep(_options.RetryDelay);
            }
            if (count > 0)
            {
                dirty = true;
                long last = _batch[count - 1].Seq;
                Interlocked.Exchange(ref _writtenSeq, last);
                Interlocked.Add(ref _writtenCount, count);
                Array.Clear(_batch, 0, count);
                lock (_queueLock)
                {
                    _queuedBytes -= batchBytes;
                    Monitor.PulseAll(_queueLock); // publishers waiting for room
                }
                Written?.Invoke(last);
            }

            bool fsyncFailed = false;
            if (dirty && (fsyncNow || sinceFsync.Elapsed >= _options.FsyncInterval))
            {
                if (TryFsync())
                {
                    dirty = false;
                    Interlocked.Exchange(ref _durableSeq, Interlocked.Read(ref _writtenSeq));
                    sinceFsync.Restart();
                }
                else
                {
                    fsyncFailed = true;
                }
            }
            if (!dirty)
            {
                durableWaiters?.TrySetResult();
                flushWaiters?.TrySetResult();
            }
            else if (!fsyncFailed)
            {
                // Written but not yet due for fsync (no ack=disk waiter, interval not elapsed): the wait
                // at the top of the loop sleeps until the interval is up or someone asks for an fsync.
                if (durableWaiters is not null || flushWaiters is not null)
                {
                    lock (_queueLock)
                    {
                        if (durableWaiters is not null) MergeInto(ref _nextFsync, durableWaiters);
                        if (flushWaiters is not null) MergeInto(ref _flushWaiters, flushWaiters);
                        _fsyncRequested = true;
                    }
                }
            }
            else
            {
                // fsync failed: hand the waiters to the next round rather than lying to them.
                lock (_queueLock)
                {
                    if (durableWaiters is not null) MergeInto(ref _nextFsync, durableWaiters);
                    if (flushWaiters is not null) MergeInto(ref _flushWaiters, flushWaiters);
                    _fsyncRequested = true;
                }
                Thread.Sleep(_options.RetryDelay);
            }

            // Gather window: after writing, let the next lines pile up for a few milliseconds instead of
            // waiting on the monitor. Publishers only pulse a *waiting* writer, so at high rates this
            // turns one futex wake (a syscall on the publisher's path) per event into at most one per
            // window, and one pwritev per window of events; each wake-up of this thread is two context
            // switches on the core the publishers need. Skipped when someone waits for an fsync or the
            // writer is stopping; readers behind the ring wait for WrittenSeq, so nothing is missed.
            if (count > 0 && !Volatile.Read(ref _fsyncRequested) && !Volatile.Read(ref _stopping))
                Thread.Sleep(GatherWindowMilliseconds);
        }
    }

    private static void MergeInto(ref TaskCompletionSource? target, TaskCompletionSource waiters)
    {
        if (target is null)
        {
            target = waiters;
            return;
        }
        var next = target;
        next.Task.ContinueWith(static (_, s) => ((TaskCompletionSource)s!).TrySetResult(), waiters,
            TaskScheduler.Default);
    }

    private DateTime _disposeDeadline = DateTime.MaxValue;

    /// <summary>
    /// Writes one batch, grouped per file with one gathered write each. False = failed, retry. A
    /// batch bigger than a slice (1/8 of <see cref="JsonlWriterOptions.SegmentBytes"/>, 4 KiB..4 MiB)
    /// is written slice by slice with rotation between them, so a burst cannot make one segment
    /// many times <c>SegmentBytes</c> (which retention could then only delete whole). A retry after a
    /// failure resumes at the failed slice: slices already written are not written twice.
    /// </summary>
    private bool TryWriteBatch(int count)
    {
        long sliceBytes = Math.Clamp(_options.SegmentBytes / 8, 4096, 4L * 1024 * 1024);
        while (_batchDone < count)
        {
            int end = _batchDone;
            long bytes = 0;
            while (end < count && (end == _batchDone || bytes + _batch[end].Line.Length <= sliceBytes))
                bytes += _batch[end++].Line.Length;
            if (!TryWriteSlice(_batchDone, end)) return false;
            _batchDone = end;
        }
        _batchDone = 0;
        if (_fault is not null)
        {
            _log("JSONL writes succeed again after: " + _fault.Message);
            _fault = null;
        }
        return true;
    }

    /// <summary>Entries of <c>_batch</c> already written by an attempt that failed on a later slice.</summary>
    private int _batchDone;

    /// <summary>Writes <c>_batch[start..end)</c> whole or, on failure, not at all.</summary>
    private bool TryWriteSlice(int start, int end)
    {
        try
        {
            foreach (var file in _files) file?.BeginBatch();
            for (int i = start; i < end; i++)
                _gather[(int)_batch[i].Category].Add(_batch[i].Line);

            for (int c = 0; c < _gather.Length; c++)
            {
                List<ReadOnlyMemory<byte>> lines = _gather[c];
                if (lines.Count == 0) continue;
                SegmentFile file = _files[c] ??= SegmentFile.Open(_options.DataDir, (EventCategory)c, Segments);
                file.Append(lines);
            }
            // The whole batch is on disk: only now do the segments (and readers) learn about it.
            for (int c = 0; c < _gather.Length; c++)
            {
                List<ReadOnlyMemory<byte>> lines = _gather[c];
                if (lines.Count == 0) continue;
                SegmentFile file = _files[c]!;
                Segments.Appended(file.Segment, lines, file.BatchStart);
                lines.Clear();
            }
            RotateFullSegments();
            EnforceRetention();
            return true;
        }
        catch (IOException e)
        {
            // Nothing of this slice counts as written: files are cut back to their last good
            // length and the slice is written again, so no line is torn or duplicated.
            foreach (var lines in _gather) lines.Clear();
            foreach (var file in _files) file?.Rollback();
            if (_fault is null) _log("JSONL write failed, publishes are refused until it succeeds: " + e.Message);
            _fault = e;
            return false;
        }
        catch (UnauthorizedAccessException e)
        {
            foreach (var lines in _gather) lines.Clear();
            foreach (var file in _files) file?.Rollback();
            if (_fault is null) _log("JSONL write failed, publishes are refused until it succeeds: " + e.Message);
            _fault = e;
            return false;
        }
    }

    /// <summary>
    /// Rotates every segment that reached <see cref="JsonlWriterOptions.SegmentBytes"/>. A failed
    /// rename is logged and retried after the next write; the batch stays written either way.
    /// </summary>
    private void RotateFullSegments()
    {
        for (int c = 0; c < _files.Length; c++)
        {
            SegmentFile? file = _files[c];
            if (file is null || file.Length < _options.SegmentBytes) continue;
            _files[c] = null; // the next write opens a new <category>.log (or this one again if the rename failed)
            try
            {
                file.Rotate(Segments);
                _nextBlockedRetentionCheck = 0; // a new rotated file may be deletable right away
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log($"JSONL rotation of {EventVocabulary.Name((EventCategory)c)}.log failed (retried after the next write): {e.Message}");
            }
        }
    }

    /// <summary>
    /// SPEC §5 disk cap: while the JSONL files exceed <see cref="JsonlWriterOptions.MaxDiskBytes"/>,
    /// deletes rotated segments oldest first (never an active file), keeping those S2 has not
    /// shipped yet (<see cref="ShippedSeq"/>). Runs on the writer thread after each write.
    /// </summary>
    private void EnforceRetention()
    {
        long total = Segments.TotalBytes;
        if (total <= _options.MaxDiskBytes)
        {
            _retentionBlocked = false;
            _unshippedLogged = false;
            return;
        }
        // Over the cap with nothing deletable (S2 behind, or only active files): look again after
        // the next rotation or at most once a second, rather than after every write.
        if (_retentionBlocked && Environment.TickCount64 < _nextBlockedRetentionCheck) return;

        long? shipped = null;
        if (ShippedSeq is { } shippedSeq)
        {
            try
            {
                shipped = shippedSeq();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                shipped = 0; // unknown: keep everything unshipped rather than lose it
            }
        }
        List<JsonlSegment> rotated = Segments.RotatedByFirstSeq();
        var candidates = new RetentionCandidate[rotated.Count];
        for (int i = 0; i < rotated.Count; i++)
            candidates[i] = new RetentionCandidate(rotated[i].FirstSeq, rotated[i].LastSeq, rotated[i].Length);
        RetentionPlan plan = RetentionPolicy.Select(candidates, total, _options.MaxDiskBytes, shipped);
        foreach (int i in plan.Delete)
        {
            try
            {
                Segments.Delete(rotated[i]);
                Interlocked.Increment(ref _deletedSegments);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log($"cannot delete {rotated[i].Path} for the disk cap: {e.Message}");
            }
        }

        if (plan.KeptUnshipped == 0) _unshippedLogged = false;
        _retentionBlocked = Segments.TotalBytes > _options.MaxDiskBytes;
        if (!_retentionBlocked) return;
        _nextBlockedRetentionCheck = Environment.TickCount64 + 1000;
        if (plan.KeptUnshipped > 0)
        {
            // Once per episode: until S2 catches up (or the files fit again).
            if (_unshippedLogged) return;
            _unshippedLogged = true;
            _log($"JSONL files take {Segments.TotalBytes} bytes, over EVENTS_MAX_DISK_BYTES={_options.MaxDiskBytes}: " +
                 $"{plan.KeptUnshipped} rotated files ({plan.UnshippedBytes} bytes) are kept because S2 has not " +
                 $"shipped them yet (shipped through seq {shipped}); they are deleted once it catches up");
        }
        else if (!_activeOnlyLogged)
        {
            // A configuration matter (the cap is smaller than the active files): say it once.
            _activeOnlyLogged = true;
            _log($"JSONL files take {Segments.TotalBytes} bytes, over EVENTS_MAX_DISK_BYTES={_options.MaxDiskBytes}, " +
                 "with no rotated file left to delete (the active files are never deleted)");
        }
    }

    private bool TryFsync()
    {
        try
        {
            foreach (var file in _files) file?.Sync();
            return true;
        }
        catch (IOException e)
        {
            _fault = e;
            _log("fsync failed: " + e.Message);
            return false;
        }
    }

    /// <summary>Writes and fsyncs what is queued, then closes every file. Later enqueues throw.</summary>
    public void Dispose() => Close(TimeSpan.FromSeconds(30));

    public void Close(TimeSpan timeout)
    {
        lock (_queueLock)
        {
            if (_disposed) return;
            _disposed = true;
            _stopping = true;
            _disposeDeadline = DateTime.UtcNow + timeout;
            Monitor.PulseAll(_queueLock);
        }
        _thread.Join(timeout);
        foreach (var file in _files) file?.Dispose();
        Array.Clear(_files);
        WakeWrittenWaiters();
    }

    /// <summary>
    /// How much of a file's synced tail stays in the page cache (for replays just behind the ring); what lies
    /// before it is handed back to the kernel in steps of <see cref="CacheReleaseStep"/>.
    /// </summary>
    internal const long CachedTailBytes = 8 * 1024 * 1024;

    /// <summary>
    /// Released ranges start and end on multiples of this: the page cache holds large folios (up to 2 MiB,
    /// aligned to their size in the file), and one that straddles a range's edge would not be dropped.
    /// </summary>
    internal const long CacheReleaseStep = 2 * 1024 * 1024;

    /// <summary>The open <c>&lt;category&gt;.log</c> of one category.</summary>
    private sealed class SegmentFile : IDisposable
    {
        private readonly string _dataDir;
        private readonly SafeFileHandle _handle;
        private long _syncedLength;
        private long _cacheReleasedTo;
        private bool _needsSync;

        private SegmentFile(string dataDir, SafeFileHandle handle, long length, JsonlSegment segment)
        {
            _dataDir = dataDir;
            _handle = handle;
            Length = length;
            BatchStart = length;
            _syncedLength = length;
            Segment = segment;
        }

        public long Length { get; private set; }

        /// <summary>Length before the batch being written: what a failed batch is cut back to.</summary>
        public long BatchStart { get; private set; }

        /// <summary>This file in the segment catalog.</summary>
        public JsonlSegment Segment { get; }

        public static SegmentFile Open(string dataDir, EventCategory category, SegmentCatalog segments)
        {
            string path = JsonlFiles.ActivePath(dataDir, category);
            bool created = !File.Exists(path);
            var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
            if (created) JsonlFiles.SyncDirectory(dataDir);
            long length = RandomAccess.GetLength(handle);
            return new SegmentFile(dataDir, handle, length, segments.OpenActive(category, length));
        }

        public void BeginBatch() => BatchStart = Length;

        public void Append(IReadOnlyList<ReadOnlyMemory<byte>> lines)
        {
            long size = 0;
            foreach (var line in lines) size += line.Length;
            RandomAccess.Write(_handle, lines, Length);
            Length += size;
            _needsSync = true;
        }

        /// <summary>
        /// Cuts off whatever the failed batch left, including lines of it that did reach this file
        /// before another file failed: the whole batch is written again.
        /// </summary>
        public void Rollback()
        {
            Length = BatchStart;
            try
            {
                if (RandomAccess.GetLength(_handle) != Length) RandomAccess.SetLength(_handle, Length);
            }
            catch (IOException)
            {
                // Retried with the next attempt.
            }
        }

        public void Sync()
        {
            if (!_needsSync) return;
            RandomAccess.FlushToDisk(_handle);
            _syncedLength = Length;
            _needsSync = false;
            ReleaseCache();
        }

        /// <summary>
        /// Gives the page cache of synced bytes behind the cached tail back to the kernel. The daemon's memory is the
        /// browser's: a JSONL file that is written at 40 MB/s would otherwise grow the VM's page cache by as much, with
        /// data that only a far-behind replay reads again. Pages freed this way are also the ones the next writes
        /// reuse, instead of first-touch pages (which cost a VM far more to fault in).
        /// </summary>
        private void ReleaseCache()
        {
            long releaseTo = (_syncedLength - CachedTailBytes) & ~(CacheReleaseStep - 1);
            if (releaseTo <= _cacheReleasedTo) return;
            JsonlFiles.DropCachedPages(_handle, _cacheReleasedTo, releaseTo - _cacheReleasedTo);
            _cacheReleasedTo = releaseTo;
        }

        /// <summary>
        /// fsyncs, closes and renames this segment to the next rotated number (through the catalog,
        /// so readers follow it and its index is persisted).
        /// </summary>
        public void Rotate(SegmentCatalog segments)
        {
            Dispose();
            segments.Rotate(Segment);
            JsonlFiles.SyncDirectory(_dataDir);
        }

        public void Dispose()
        {
            if (_handle.IsClosed) return;
            try
            {
                Sync();
            }
            finally
            {
                _handle.Dispose();
            }
        }
    }
}
