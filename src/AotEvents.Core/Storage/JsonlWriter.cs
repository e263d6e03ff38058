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
    private Envelope[] _queue = new Envelope[1024];
    private int _queueCount;
    private Envelope[] _batch = new Envelope[1024];
    private long _queuedBytes;
    private bool _writerWaiting;
    private bool _stopping;
    private bool _disposed;
    private bool _fsyncRequested;
    private TaskCompletionSource? _nextFsync;
    private TaskCompletionSource? _flushWaiters;

    private readonly SegmentFile?[] _files = new SegmentFile?[EventVocabulary.CategoryCount];
    private readonly List<ReadOnlyMemory<byte>>[] _gather = new List<ReadOnlyMemory<byte>>[EventVocabulary.CategoryCount];
    private readonly Thread _thread;
    private long _writtenSeq;
    private long _durableSeq;
    private volatile Exception? _fault;

    public JsonlWriter(JsonlWriterOptions options, long recoveredLastSeq, Action<string> log)
    {
        _options = options;
        _log = log;
        _writtenSeq = _durableSeq = recoveredLastSeq;
        for (int i = 0; i < _gather.Length; i++) _gather[i] = new List<ReadOnlyMemory<byte>>();
        Directory.CreateDirectory(options.DataDir);
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
            if (_queueCount == 0 && _durableSeq == _writtenSeq && _fault is null) return Task.CompletedTask;
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
                    TimeSpan wait = dirty ? _options.FsyncInterval - sinceFsync.Elapsed : Timeout.InfiniteTimeSpan;
                    if (wait < TimeSpan.Zero) wait = TimeSpan.Zero;
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

            if (dirty && (fsyncNow || sinceFsync.Elapsed >= _options.FsyncInterval))
            {
                if (TryFsync())
                {
                    dirty = false;
                    Interlocked.Exchange(ref _durableSeq, Interlocked.Read(ref _writtenSeq));
                    sinceFsync.Restart();
                }
            }
            if (!dirty)
            {
                durableWaiters?.TrySetResult();
                flushWaiters?.TrySetResult();
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

    /// <summary>Writes one batch, grouped per file with one gathered write each. False = failed, retry.</summary>
    private bool TryWriteBatch(int count)
    {
        if (count == 0) return true;
        try
        {
            for (int i = 0; i < count; i++)
                _gather[(int)_batch[i].Category].Add(_batch[i].Line);

            for (int c = 0; c < _gather.Length; c++)
            {
                List<ReadOnlyMemory<byte>> lines = _gather[c];
                if (lines.Count == 0) continue;
                SegmentFile file = _files[c] ??= SegmentFile.Open(_options.DataDir, (EventCategory)c);
                file.Append(lines);
                lines.Clear();
                if (file.Length >= _options.SegmentBytes)
                {
                    file.Rotate();
                    _files[c] = null;
                }
            }
            if (_fault is not null)
            {
                _log("JSONL writes succeed again after: " + _fault.Message);
                _fault = null;
            }
            return true;
        }
        catch (IOException e)
        {
            // Nothing of this batch counts as written: files are cut back to their last good
            // length and the whole batch is written again, so no line is torn or duplicated.
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
    }

    /// <summary>The open <c>&lt;category&gt;.log</c> of one category.</summary>
    private sealed class SegmentFile : IDisposable
    {
        private readonly string _dataDir;
        private readonly EventCategory _category;
        private readonly SafeFileHandle _handle;
        private long _syncedLength;
        private bool _needsSync;

        private SegmentFile(string dataDir, EventCategory category, SafeFileHandle handle, long length)
        {
            _dataDir = dataDir;
            _category = category;
            _handle = handle;
            Length = length;
            _syncedLength = length;
        }

        public long Length { get; private set; }

        public static SegmentFile Open(string dataDir, EventCategory category)
        {
            string path = JsonlFiles.ActivePath(dataDir, category);
            bool created = !File.Exists(path);
            var handle = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
            if (created) JsonlFiles.SyncDirectory(dataDir);
            return new SegmentFile(dataDir, category, handle, RandomAccess.GetLength(handle));
        }

        public void Append(IReadOnlyList<ReadOnlyMemory<byte>> lines)
        {
            long size = 0;
            foreach (var line in lines) size += line.Length;
            RandomAccess.Write(_handle, lines, Length);
            Length += size;
            _needsSync = true;
        }

        /// <summary>Cuts off whatever a failed write may have left after the last good line.</summary>
        public void Rollback()
        {
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
        }

        /// <summary>fsyncs and renames this segment to the next rotated number.</summary>
        public void Rotate()
        {
            Sync();
            _handle.Dispose();
            var rotated = JsonlFiles.RotatedSegments(_dataDir, _category);
            int next = rotated.Count == 0 ? 1 : rotated[^1].Number + 1;
            File.Move(JsonlFiles.ActivePath(_dataDir, _category), JsonlFiles.RotatedPath(_dataDir, _category, next));
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
