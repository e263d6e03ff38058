using System.Buffers.Text;
using System.Diagnostics;
using System.Text;
using AotEvents.Config;
using AotEvents.Events;
using AotEvents.Pipeline;
using AotEvents.Shipping;

namespace AotEvents.S2.Shipping;

/// <summary>
/// Ships every envelope to S2 exactly once (SPEC §6): reads envelopes in seq order (from the ring,
/// or from the JSONL files when it fell behind), batches them by linger / records / bytes into one
/// stream at a time, and appends with <c>match_seq_num</c>. Before the first append to a stream and
/// after any ambiguous failure (timeout, lost answer, 412) it reads the stream's tail and last
/// record, so a batch that landed is never appended again and nothing is skipped. Retries back off
/// exponentially with full jitter and honour <c>retry-after-ms</c>. It holds at most one batch (plus
/// a read-ahead of file lines bounded by MaxBytes), so memory stays bounded however long S2 is down.
/// <para>Only envelopes the JSONL writer has written are shipped (unless the writer is failing): a
/// kill -9 loses what was not written yet, and S2 must never hold an event the files lost, or the
/// seqs handed out again after the restart would be taken for "already shipped".</para>
/// </summary>
public sealed class S2Shipper : IEventShipper, IAsyncDisposable
{
    /// <summary>Reads up to <c>max</c> envelope lines with seq &gt; <c>afterSeq</c> from the JSONL files.</summary>
    public delegate int FileReader(long afterSeq, int max, List<(long Seq, byte[] Json)> into);

    private readonly S2Client _client;
    private readonly ShipperOptions _options;
    private readonly EventPipeline _pipeline;
    private readonly FileReader _readFiles;
    private readonly ShippingPosition _position;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _waitLock = new();
    private readonly List<(long Seq, TaskCompletionSource Done)> _waiters = new();
    private readonly List<Item> _batch = new();
    private readonly List<(long Seq, byte[] Json)> _fileLines = new();
    private readonly List<(long Seq, byte[] Json)> _probe = new();
    private int _fileLineIndex;
    private int _fileReadAhead = InitialReadAhead;
    private Item? _carry; // read but did not fit the previous batch: it starts the next one
    private Task? _loop;
    private long _ackedSeq;
    private long _shipped, _acked, _retries, _fileReads;
    private long _pendingTsMicros;
    private volatile bool _draining;

    // What the shipper knows about the stream it appends to: the next seq_num, and the seq of the
    // last envelope in it when that envelope is one of ours (0 otherwise).
    private string? _syncedStream;
    private long _nextSeqNum;
    private long _lastSeqInStream;

    /// <summary>Lines read from the files per read at first; then sized so one read holds about MaxBytes.</summary>
    private const int InitialReadAhead = 16;
    private const int MaxReadAhead = 1000;

    private enum ReadState { Got, NotPublished, NotWritten }

    private readonly record struct Item(long Seq, ReadOnlyMemory<byte> Body, string Stream, long TsMicros);

    public S2Shipper(S2Client client, ShipperOptions options, EventPipeline pipeline, FileReader readFiles,
        string dataDir, Action<string> log)
    {
        _client = client;
        _options = options;
        _pipeline = pipeline;
        _readFiles = readFiles;
        _position = new ShippingPosition(dataDir);
        _log = log;
        _ackedSeq = Math.Min(_position.Load(), pipeline.LastSeq);
        // Retention must not delete rotated files holding events S2 does not have yet (SPEC §6).
        pipeline.Writer.ShippedSeq ??= () => AckedSeq;
    }

    public static S2Shipper Create(DaemonConfig config, EventPipeline pipeline, FileReader readFiles, Action<string> log)
    {
        var client = new S2Client(new S2Options
        {
            Basin = config.S2Basin!,
            AccessToken = config.S2AccessToken!,
            Endpoint = config.S2Endpoint,
        });
        return new S2Shipper(client, new ShipperOptions
        {
            FixedStream = config.S2Stream,
            Linger = config.S2BatcherLinger,
            MaxRecords = config.S2BatcherMaxRecords,
            MaxBytes = config.S2BatcherMaxBytes,
        }, pipeline, readFiles, config.DataDir, log);
    }

    public S2Client Client => _client;
    public long AckedSeq => Interlocked.Read(ref _ackedSeq);
    public long Shipped => Interlocked.Read(ref _shipped);
    public long Acked => Interlocked.Read(ref _acked);
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>Reads of the JSONL files (catch-up after falling behind the ring).</summary>
    internal long FileReads => Interlocked.Read(ref _fileReads);

    /// <summary>Envelopes the shipper holds right now: the batch and the file read-ahead (tests).</summary>
    internal int HeldRecords => _batch.Count + _fileLines.Count;

    public double LagSeconds
    {
        get
        {
            long ts = Interlocked.Read(ref _pendingTsMicros);
            if (ts == 0 || AckedSeq >= _pipeline.LastSeq) return 0;
            long now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
            return Math.Max(0, (now - ts) / 1_000_000.0);
        }
    }

    public void Start() => _loop = Task.Run(RunAsync);

    public Task WaitAckedAsync(long seq, CancellationToken cancellationToken)
    {
        if (AckedSeq >= seq) return Task.CompletedTask;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waitLock)
        {
            if (AckedSeq >= seq) return Task.CompletedTask;
            _waiters.Add((seq, done));
        }
        return done.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Shutdown: ships what was published before this call, for at most <paramref name="timeout"/>,
    /// then stops. Whatever is left is shipped after the next start (the position is on disk).
    /// </summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        _draining = true;
        _pipeline.Ring.WakeAll();
        if (_loop is not null)
        {
            long target = _pipeline.LastSeq;
            var deadline = Stopwatch.StartNew();
            while (AckedSeq < target && deadline.Elapsed < timeout && !_loop.IsCompleted)
                await Task.Delay(20).ConfigureAwait(false);
            if (AckedSeq < target)
                _log($"S2 shutdown deadline reached with {target - AckedSeq} events not yet shipped; they ship after the next start");
            _stop.Cancel();
            _pipeline.Ring.WakeAll();
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
        SavePosition(AckedSeq);
    }

    /// <summary>Saves the position; a failure is logged, never thrown (it is only a hint, see <see cref="ShippingPosition"/>).</summary>
    private void SavePosition(long seq)
    {
        try
        {
            _position.Save(seq);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log("could not save the S2 position (it is only a hint): " + e.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        _client.Dispose();
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (!await FillBatchAsync(stop).ConfigureAwait(false)) continue;
                await ShipBatchAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Never lose an event: log, wait, and retry the same position.
                _log("S2 shipper error (will retry): " + e.Message);
                _syncedStream = null;
                await Task.Delay(_options.MaxBackoff, stop).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Collects the next batch after <see cref="AckedSeq"/>: one stream, at most MaxRecords and
    /// MaxBytes, waiting up to Linger after the first envelope for more. False when nothing came.
    /// </summary>
    private async Task<bool> FillBatchAsync(CancellationToken stop)
    {
        _batch.Clear();
        long next = AckedSeq;
        long bytes = 0;
        long lingerUntil = 0;
        while (true)
        {
            ReadState state;
            while ((state = TryRead(next, out Item item)) == ReadState.Got)
            {
                long metered = S2Limits.MeteredBytes(item.Body.Length);
                if (_batch.Count > 0 && (item.Stream != _batch[0].Stream || bytes + metered > _options.MaxBytes))
                {
                    _carry = item; // it starts the next batch
                    return true;
                }
                _batch.Add(item);
                bytes += metered;
                next = item.Seq;
                if (_batch.Count == 1) lingerUntil = Environment.TickCount64 + (long)_options.Linger.TotalMilliseconds;
                if (_batch.Count >= _options.MaxRecords) return true;
            }
            if (_batch.Count > 0 && (Environment.TickCount64 >= lingerUntil || _draining)) return true;
            stop.ThrowIfCancellationRequested();

            Task wake = state == ReadState.NotWritten
                ? _pipeline.Writer.WaitWrittenAsync(next + 1)
                : _pipeline.Ring.WaitAsync(next);
            if (_batch.Count == 0)
            {
                if (_draining && next >= _pipeline.LastSeq) await Task.Delay(20, stop).ConfigureAwait(false);
                else await WaitQuietlyAsync(wake, TimeSpan.FromSeconds(1), stop).ConfigureAwait(false);
                return false;
            }
            long wait = lingerUntil - Environment.TickCount64;
            if (wait > 0) await WaitQuietlyAsync(wake, TimeSpan.FromMilliseconds(wait), stop).ConfigureAwait(false);
        }
    }

    /// <summary>Waits for <paramref name="wake"/> at most <paramref name="timeout"/>; a failed wake (closed writer) waits a little.</summary>
    private static async Task WaitQuietlyAsync(Task wake, TimeSpan timeout, CancellationToken stop)
    {
        try
        {
            await wake.WaitAsync(timeout, stop).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
        {
            await Task.Delay(10, stop).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The envelope after <paramref name="afterSeq"/>: from the ring, else from the files. Only
    /// written envelopes are returned while the writer is healthy (see the class remarks).
    /// </summary>
    private ReadState TryRead(long afterSeq, out Item item)
    {
        long want = afterSeq + 1;
        item = default;
        if (_carry is { } carried)
        {
            _carry = null;
            if (carried.Seq == want)
            {
                item = carried;
                return ReadState.Got;
            }
        }
        if (want > _pipeline.Writer.WrittenSeq && _pipeline.Writer.Fault is null)
            return want > _pipeline.LastSeq ? ReadState.NotPublished : ReadState.NotWritten;

        int got = _pipeline.Ring.TryGet(want, out Envelope envelope);
        if (got > 0)
        {
            item = new Item(envelope.Seq, envelope.JsonMemory, StreamFor(envelope.Session.Id), ReadTs(envelope.Json));
            return ReadState.Got;
        }
        if (got == 0) return ReadState.NotPublished;

        // Behind the ring: the files hold it. Lines are read ahead in batches sized to about MaxBytes,
        // so a long catch-up costs one file read per batch, not per event, and memory stays bounded
        // even when the envelopes are large.
        if (_fileLineIndex >= _fileLines.Count || _fileLines[_fileLineIndex].Seq != want)
        {
            _fileLines.Clear();
            _fileLineIndex = 0;
            Interlocked.Increment(ref _fileReads);
            _readFiles(afterSeq, _fileReadAhead, _fileLines);
            if (_fileLines.Count == 0) return ReadState.NotWritten; // evicted from the ring, not written yet
            long lineBytes = 0;
            foreach (var line in _fileLines) lineBytes += line.Json.Length + 8;
            _fileReadAhead = (int)Math.Clamp(_options.MaxBytes * _fileLines.Count / Math.Max(1, lineBytes),
                1, Math.Max(MaxReadAhead, _options.MaxRecords));
            if (_fileLines[0].Seq > want)
            {
                // Retention deleted events S2 never got (the cap was reached anyway): say so and go on
                // with what exists instead of stalling forever.
                _log($"S2 shipper: seqs {want}..{_fileLines[0].Seq - 1} are no longer on disk and cannot be shipped");
            }
        }
        var (seq, json) = _fileLines[_fileLineIndex++];
        if (_fileLineIndex == _fileLines.Count)
        {
            _fileLines.Clear(); // do not keep the read-ahead alive while waiting
            _fileLineIndex = 0;
        }
        string session = ReadSessionId(json);
        item = new Item(seq, json, StreamFor(session), ReadTs(json));
        return ReadState.Got;
    }

    private string StreamFor(string sessionId) => _options.FixedStream ?? sessionId;

    private async Task ShipBatchAsync(CancellationToken stop)
    {
        string stream = _batch[0].Stream;
        Interlocked.Exchange(ref _pendingTsMicros, _batch[0].TsMicros);
        int attempt = 0;
        int mismatches = 0;
        while (true)
        {
            stop.ThrowIfCancellationRequested();
            try
            {
                if (_syncedStream != stream) await SyncAsync(stream, stop).ConfigureAwait(false);
                // Skip what the stream already holds (an earlier append landed but its answer was lost,
                // or the position on disk was behind). Envelopes go to a stream in seq order, so
                // everything up to our last envelope in it is there.
                int skip = 0;
                while (skip < _batch.Count && _batch[skip].Seq <= _lastSeqInStream) skip++;
                if (skip == _batch.Count)
                {
                    MarkAcked(_batch[^1].Seq, 0);
                    return;
                }
                var bodies = new ReadOnlyMemory<byte>[_batch.Count - skip];
                for (int i = skip; i < _batch.Count; i++) bodies[i - skip] = _batch[i].Body;
                Interlocked.Add(ref _shipped, bodies.Length);
                S2AppendAck ack = await _client.AppendAsync(stream, bodies, _nextSeqNum, stop).ConfigureAwait(false);
                _nextSeqNum = ack.End.SeqNum;
                _lastSeqInStream = _batch[^1].Seq;
                MarkAcked(_batch[^1].Seq, bodies.Length);
                return;
            }
            catch (S2Exception e) when (!stop.IsCancellationRequested)
            {
                _syncedStream = null; // whatever happened, learn the stream's state again
                // The tail moved (our lost append landed, or someone else appended): re-sync at once
                // the first time; a stream that keeps moving is retried with backoff.
                if (e.IsSeqNumMismatch && mismatches++ == 0) continue;
                Interlocked.Increment(ref _retries);
                TimeSpan delay = e.RetryAfter ?? Backoff(attempt++);
                if (!e.IsRetryable) delay = _options.MaxBackoff; // auth/config problems: keep trying, slowly
                _log($"S2 append to {stream} failed ({e.Message}); retrying in {(long)delay.TotalMilliseconds} ms");
                await Task.Delay(delay, stop).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Full-jitter exponential backoff.</summary>
    private TimeSpan Backoff(int attempt)
    {
        double cap = Math.Min(_options.MaxBackoff.TotalMilliseconds,
            _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 20)));
        return TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * cap + 1);
    }

    /// <summary>Learns the stream's tail and the envelope of its last record; creates a missing stream.</summary>
    private async Task SyncAsync(string stream, CancellationToken stop)
    {
        S2StreamPosition tail;
        try
        {
            tail = await _client.CheckTailAsync(stream, stop).ConfigureAwait(false);
        }
        catch (S2Exception e) when (e.IsStreamNotFound)
        {
            await _client.CreateStreamAsync(stream, stop).ConfigureAwait(false);
            _log($"created S2 stream {stream}");
            tail = await _client.CheckTailAsync(stream, stop).ConfigureAwait(false);
        }
        _nextSeqNum = tail.SeqNum;
        _lastSeqInStream = 0;
        if (tail.SeqNum > 0)
        {
            S2ReadBatch last = await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(tail.SeqNum - 1), count: 1,
                cancellationToken: stop).ConfigureAwait(false);
            if (last.Records.Count > 0)
            {
                ReadOnlyMemory<byte> body = last.Records[^1].Body;
                long seq = Storage.JsonlRecovery.ReadSeqFast(body.Span);
                if (seq > 0 && IsOurs(seq, body.Span)) _lastSeqInStream = seq;
            }
        }
        _syncedStream = stream;
    }

    /// <summary>
    /// Whether <paramref name="body"/> is byte for byte our envelope <paramref name="seq"/> (from the
    /// batch, the ring or the files). A record that is not (someone else's, or written before the data
    /// directory was reset) says nothing about what of ours the stream holds.
    /// </summary>
    private bool IsOurs(long seq, ReadOnlySpan<byte> body)
    {
        foreach (Item item in _batch)
            if (item.Seq == seq) return item.Body.Span.SequenceEqual(body);
        if (seq > _pipeline.LastSeq) return false;
        if (_pipeline.Ring.TryGet(seq, out Envelope envelope) > 0) return envelope.Json.SequenceEqual(body);
        _probe.Clear();
        _readFiles(seq - 1, 1, _probe);
        bool ours = _probe.Count == 1 && _probe[0].Seq == seq && _probe[0].Json.AsSpan().SequenceEqual(body);
        _probe.Clear();
        return ours;
    }

    private void MarkAcked(long seq, int count)
    {
        Interlocked.Add(ref _acked, count);
        Interlocked.Exchange(ref _ackedSeq, seq);
        Interlocked.Exchange(ref _pendingTsMicros, 0);
        SavePosition(seq);
        lock (_waitLock)
        {
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Seq <= seq)
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    private static readonly byte[] SessionPrefix = Encoding.UTF8.GetBytes("{\"capture_session_id\":\"");

    /// <summary>The capture_session_id of a daemon-written envelope (always its first member).</summary>
    internal static string ReadSessionId(ReadOnlySpan<byte> envelope)
    {
        if (!envelope.StartsWith(SessionPrefix)) return "";
        ReadOnlySpan<byte> rest = envelope[SessionPrefix.Length..];
        int end = rest.IndexOf((byte)'"');
        return end < 0 ? "" : Encoding.UTF8.GetString(rest[..end]);
    }

    /// <summary>event.ts of a daemon-written envelope (the event object starts with it).</summary>
    internal static long ReadTs(ReadOnlySpan<byte> envelope)
    {
        int i = envelope.IndexOf("\"event\":{\"ts\":"u8);
        if (i < 0) return 0;
        return Utf8Parser.TryParse(envelope[(i + 14)..], out long ts, out _) ? ts : 0;
    }
}
