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
/// exponentially with full jitter and honour <c>retry-after-ms</c>. It holds at most one batch, so
/// memory stays bounded however long S2 is down.
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
    private int _fileLineIndex;
    private bool _waitingForWriter;
    private Task? _loop;
    private long _ackedSeq;
    private long _shipped, _acked, _retries;
    private long _pendingTsMicros;
    private volatile bool _draining;

    // What the shipper knows about the stream it appends to: next seq_num and last envelope in it.
    private string? _syncedStream;
    private long _nextSeqNum;
    private string? _lastSessionInStream;
    private long _lastSeqInStream;

    private readonly record struct Item(long Seq, ReadOnlyMemory<byte> Body, string Stream, string SessionId, long TsMicros);

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
        _position.Save(AckedSeq);
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
            bool added = false;
            while (_batch.Count < _options.MaxRecords && TryRead(next, out Item item))
            {
                long metered = S2Limits.MeteredBytes(item.Body.Length);
                if (_batch.Count > 0 && (item.Stream != _batch[0].Stream || bytes + metered > _options.MaxBytes))
                    return true; // the next one starts a new batch
                _batch.Add(item);
                bytes += metered;
                next = item.Seq;
                added = true;
                if (_batch.Count == 1) lingerUntil = Environment.TickCount64 + (long)_options.Linger.TotalMilliseconds;
            }
            if (_batch.Count >= _options.MaxRecords) return true;
            if (_batch.Count > 0 && (Environment.TickCount64 >= lingerUntil || _draining)) return true;
            if (added) continue;
            if (stop.IsCancellationRequested) return false;

            if (_waitingForWriter)
            {
                _waitingForWriter = false;
                await Task.Delay(10, stop).ConfigureAwait(false);
                if (_batch.Count == 0) return false;
                continue;
            }
            Task published = _pipeline.Ring.WaitAsync(next);
            if (_batch.Count == 0)
            {
                if (_draining && next >= _pipeline.LastSeq) await Task.Delay(20, stop).ConfigureAwait(false);
                else await published.WaitAsync(TimeSpan.FromSeconds(1), stop).ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
                return false;
            }
            long wait = lingerUntil - Environment.TickCount64;
            if (wait > 0)
                await published.WaitAsync(TimeSpan.FromMilliseconds(wait), stop)
                    .ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    /// <summary>The envelope after <paramref name="afterSeq"/>: from the ring, else from the files.</summary>
    private bool TryRead(long afterSeq, out Item item)
    {
        long want = afterSeq + 1;
        int got = _pipeline.Ring.TryGet(want, out Envelope envelope);
        if (got > 0)
        {
            item = new Item(envelope.Seq, envelope.JsonMemory, StreamFor(envelope.Session.Id), envelope.Session.Id,
                ReadTs(envelope.Json));
            return true;
        }
        item = default;
        if (got == 0) return false; // not published yet

        // Behind the ring: the files hold it (once the writer has written it). Lines are read ahead
        // in small batches, so a long catch-up costs one file read per batch, not per event.
        if (_fileLineIndex >= _fileLines.Count || _fileLines[_fileLineIndex].Seq != want)
        {
            _fileLines.Clear();
            _fileLineIndex = 0;
            _readFiles(afterSeq, Math.Max(_options.MaxRecords, 256), _fileLines);
            if (_fileLines.Count == 0)
            {
                _waitingForWriter = true; // evicted from the ring but not written yet
                return false;
            }
            if (_fileLines[0].Seq > want)
            {
                // Retention deleted events S2 never got (the cap was reached anyway): say so and go on
                // with what exists instead of stalling forever.
                _log($"S2 shipper: seqs {want}..{_fileLines[0].Seq - 1} are no longer on disk and cannot be shipped");
            }
        }
        var (seq, json) = _fileLines[_fileLineIndex++];
        string session = ReadSessionId(json);
        item = new Item(seq, json, StreamFor(session), session, ReadTs(json));
        return true;
    }

    private string StreamFor(string sessionId) => _options.FixedStream ?? sessionId;

    private async Task ShipBatchAsync(CancellationToken stop)
    {
        string stream = _batch[0].Stream;
        Interlocked.Exchange(ref _pendingTsMicros, _batch[0].TsMicros);
        int attempt = 0;
        while (true)
        {
            stop.ThrowIfCancellationRequested();
            try
            {
                if (_syncedStream != stream) await SyncAsync(stream, stop).ConfigureAwait(false);
                // Skip what the stream already holds (an earlier append landed but its answer was lost).
                int skip = 0;
                while (skip < _batch.Count && _batch[skip].SessionId == _lastSessionInStream &&
                       _batch[skip].Seq <= _lastSeqInStream)
                    skip++;
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
                _lastSessionInStream = _batch[^1].SessionId;
                _lastSeqInStream = _batch[^1].Seq;
                MarkAcked(_batch[^1].Seq, bodies.Length);
                return;
            }
            catch (S2Exception e) when (!stop.IsCancellationRequested)
            {
                _syncedStream = null; // whatever happened, learn the stream's state again
                if (e.IsSeqNumMismatch) continue; // the tail moved (our lost append landed): re-sync, no wait
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
        _lastSessionInStream = null;
        _lastSeqInStream = 0;
        if (tail.SeqNum > 0)
        {
            S2ReadBatch last = await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(tail.SeqNum - 1), count: 1,
                cancellationToken: stop).ConfigureAwait(false);
            if (last.Records.Count > 0)
            {
                ReadOnlySpan<byte> body = last.Records[^1].Body.Span;
                _lastSessionInStream = ReadSessionId(body);
                _lastSeqInStream = Storage.JsonlRecovery.ReadSeqFast(body);
            }
        }
        _syncedStream = stream;
    }

    private void MarkAcked(long seq, int count)
    {
        Interlocked.Add(ref _acked, count);
        Interlocked.Exchange(ref _ackedSeq, seq);
        Interlocked.Exchange(ref _pendingTsMicros, 0);
        try
        {
            _position.Save(seq);
        }
        catch (IOException e)
        {
            _log("could not save the S2 position (it is only a hint): " + e.Message);
        }
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
