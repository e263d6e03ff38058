using System.Buffers;
using System.Buffers.Text;
using AotEvents.Events;
using AotEvents.Http.Server;
using AotEvents.Pipeline;

namespace AotEvents.Http.Sse;

public enum StreamFormat
{
    /// <summary><c>text/event-stream</c>: <c>id:</c>/<c>data:</c> frames.</summary>
    EventStream,

    /// <summary><c>?format=ndjson</c>: one envelope per line.</summary>
    Ndjson,
}

/// <summary>
/// One <c>GET /events/stream</c> subscriber (SPEC §4): a cursor into the ring plus a pooled send
/// buffer while it writes. It drains everything new into one send, waits on the ring's shared
/// signal when idle, and sends a keepalive comment after a quiet interval. It never holds a lock
/// a publisher needs, so a slow subscriber slows nobody else.
/// </summary>
public sealed class SseSubscriber
{
    private const int SendBufferBytes = 16 * 1024;
    private const int FlushThresholdBytes = 12 * 1024;

    private static ReadOnlySpan<byte> OpenPreamble => "retry: 3000\n: stream open\n\n"u8;
    private static ReadOnlySpan<byte> KeepaliveComment => ":\n"u8;

    private readonly HttpStream _stream;
    private readonly EventPipeline _pipeline;
    private readonly StreamFilter _filter;
    private readonly StreamFormat _format;
    private readonly TimeSpan _keepalive;
    private readonly CancellationToken _shutdown;
    private readonly StreamMetrics _metrics;
    private byte[]? _buffer;
    private int _length;

    public SseSubscriber(HttpStream stream, EventPipeline pipeline, StreamFilter filter, StreamFormat format,
        TimeSpan keepalive, CancellationToken shutdown, StreamMetrics metrics)
    {
        _stream = stream;
        _pipeline = pipeline;
        _filter = filter;
        _format = format;
        _keepalive = keepalive;
        _shutdown = shutdown;
        _metrics = metrics;
    }

    /// <summary>Streams envelopes with seq &gt; <paramref name="afterSeq"/> until the client leaves or shutdown.</summary>
    public async Task RunAsync(long afterSeq)
    {
        Interlocked.Increment(ref _metrics.Subscribers);
        try
        {
            if (_format == StreamFormat.EventStream)
            {
                Append(OpenPreamble);
                await SendAsync().ConfigureAwait(false);
            }
            await StreamAsync(afterSeq).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException
                                      or System.Net.Sockets.SocketException)
        {
            // The client went away; nothing to report.
        }
        finally
        {
            Interlocked.Decrement(ref _metrics.Subscribers);
            ReturnBuffer();
        }
    }

    private async Task StreamAsync(long cursor)
    {
        RingBuffer ring = _pipeline.Ring;
        long lastSend = Environment.TickCount64;
        // Not _stream.Aborted: it also fires at shutdown, and a stream must still end after the
        // last published event is written (SPEC §4). _shutdown ends the loop once drained.
        while (_stream.IsClientConnected)
        {
            // Drain everything new into as few sends as possible.
            int got;
            while ((got = ring.TryGet(cursor + 1, out Envelope e)) > 0)
            {
                cursor = e.Seq;
                if (_filter.Matches(in e)) AppendFrame(e.Seq, e.Json);
                if (_length >= FlushThresholdBytes) await SendAsync().ConfigureAwait(false);
            }
            if (got < 0)
            {
                cursor = await CatchUpAsync(cursor).ConfigureAwait(false);
                continue;
            }
            if (_length > 0)
            {
                await SendAsync().ConfigureAwait(false);
                lastSend = Environment.TickCount64;
                continue;
            }

            if (_shutdown.IsCancellationRequested) return; // everything published has been written
            long waitMs = (long)_keepalive.TotalMilliseconds - (Environment.TickCount64 - lastSend);
            if (waitMs <= 0)
            {
                Append(_format == StreamFormat.EventStream ? KeepaliveComment : "\n"u8);
                await SendAsync().ConfigureAwait(false);
                lastSend = Environment.TickCount64;
                continue;
            }
            // The ring's shared signal wakes every waiting subscriber on publish, on shutdown and on
            // the once-a-second heartbeat (StreamHeartbeat), which is when keepalives and departed
            // clients are noticed. No timer per subscriber.
            await ring.WaitAsync(cursor).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The cursor is older than the ring's oldest envelope (a subscriber that fell behind, or an old
    /// start position): replay from the JSONL files, merged by seq across categories, until the ring
    /// holds the next seq again, and return the exact last seq handled, so live delivery goes on with
    /// no gap and no duplicate (SPEC §4). A seq that left the ring before the writer wrote it is
    /// waited for, never skipped; only seqs retention deleted from the files become one
    /// <c>dropped</c> frame per missing range. <c>after_seq=0</c> starts at the oldest retained event,
    /// so what retention removed before it is not reported. Reading the files takes no lock a
    /// publisher needs, and memory stays a few small pooled buffers however far behind it is.
    /// </summary>
    private async Task<long> CatchUpAsync(long cursor)
    {
        RingBuffer ring = _pipeline.Ring;
        Storage.JsonlWriter writer = _pipeline.Writer;
        if (cursor == 0) cursor = Math.Max(0, Storage.EnvelopeCursor.OldestRetainedSeq(ring, writer) - 1);
        using var reader = new Storage.EnvelopeCursor(ring, writer, cursor);
        CancellationToken aborted = _stream.Aborted;
        long keepaliveMs = (long)_keepalive.TotalMilliseconds;
        long lastSend = Environment.TickCount64;
        int sinceYield = 0;
        // Aborted also fires when shutdown starts. A subscriber still catching up then goes on to the
        // last event like a live one (SPEC §4: streams end after the last event is written), within the
        // server's drain time; returning here instead would only send StreamAsync straight back (the
        // ring still lacks the next seq), a busy loop until the drain timeout reset the connection.
        while (_stream.IsClientConnected && (!aborted.IsCancellationRequested || _stream.IsShuttingDown))
        {
            switch (reader.TryReadFromFiles(out Storage.CursorItem item))
            {
                case Storage.CursorRead.Envelope:
                    if (_filter.Matches(item.Json.Span, item.Category))
                    {
                        AppendFrame(item.Seq, item.Json.Span);
                        Interlocked.Increment(ref _metrics.Replayed);
                    }
                    if (_length >= FlushThresholdBytes)
                    {
                        await SendAsync().ConfigureAwait(false);
                        lastSend = Environment.TickCount64;
                        sinceYield = 0;
                    }
                    else if (++sinceYield == 4096)
                    {
                        // A filter that skips most of a long replay sends nothing for a while: let
                        // other work run, and keep the connection visibly alive.
                        sinceYield = 0;
                        if (Environment.TickCount64 - lastSend >= keepaliveMs)
                        {
                            Append(_format == StreamFormat.EventStream ? KeepaliveComment : "\n"u8);
                            await SendAsync().ConfigureAwait(false);
                            lastSend = Environment.TickCount64;
                        }
                        else
                        {
                            await Task.Yield();
                        }
                    }
                    break;

                case Storage.CursorRead.Gap:
                    WriteDropped(item.GapFrom, item.GapTo);
                    break;

                case Storage.CursorRead.Pending:
                    // Evicted from the ring but not written yet: wait for the writer.
                    if (_length == 0 && Environment.TickCount64 - lastSend >= keepaliveMs)
                        Append(_format == StreamFormat.EventStream ? KeepaliveComment : "\n"u8);
                    if (_length > 0)
                    {
                        await SendAsync().ConfigureAwait(false);
                        lastSend = Environment.TickCount64;
                    }
                    try
                    {
                        // At shutdown the writer still runs until the streams are drained: keep waiting for it.
                        CancellationToken gone = _stream.IsShuttingDown ? CancellationToken.None : aborted;
                        await reader.WaitAsync().WaitAsync(TimeSpan.FromSeconds(1), gone).ConfigureAwait(false);
                    }
                    catch (TimeoutException)
                    {
                        // Look at the abort token and the keepalive again.
                    }
                    break;

                default:
                    return reader.Position; // the ring holds the next seq, or it is not published yet
            }
        }
        return reader.Position;
    }

    private void WriteDropped(long from, long to)
    {
        long count = to - from + 1;
        Interlocked.Add(ref _metrics.Dropped, count);
        if (_format == StreamFormat.EventStream) Append("event: dropped\ndata: "u8);
        Append("{\"from_seq\":"u8);
        AppendNumber(from);
        Append(",\"to_seq\":"u8);
        AppendNumber(to);
        Append(",\"count\":"u8);
        AppendNumber(count);
        Append(_format == StreamFormat.EventStream ? "}\n\n"u8 : "}\n"u8);
    }

    /// <summary>Appends one envelope as an SSE frame (or an NDJSON line).</summary>
    public void AppendFrame(long seq, ReadOnlySpan<byte> json)
    {
        if (_format == StreamFormat.Ndjson)
        {
            Append(json);
            Append("\n"u8);
            return;
        }
        Append("id: "u8);
        AppendNumber(seq);
        Append("\ndata: "u8);
        Append(json);
        Append("\n\n"u8);
    }

    private void AppendNumber(long n)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(n, digits, out int written);
        Append(digits[..written]);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_buffer is null || _buffer.Length - _length < bytes.Length)
        {
            byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Max(SendBufferBytes, _length + bytes.Length));
            if (_buffer is not null)
            {
                _buffer.AsSpan(0, _length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_buffer);
            }
            _buffer = bigger;
        }
        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    /// <summary>Sends what is buffered and gives the buffer back: an idle subscriber holds none.</summary>
    private async ValueTask SendAsync()
    {
        if (_length == 0) return;
        await _stream.WriteAsync(_buffer.AsMemory(0, _length)).ConfigureAwait(false);
        _length = 0;
        ReturnBuffer();
    }

    private void ReturnBuffer()
    {
        if (_buffer is null) return;
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null;
        _length = 0;
    }
}

/// <summary>Counters of the streaming side, read by <c>/metrics</c>.</summary>
public sealed class StreamMetrics
{
    public long Subscribers;
    public long Replayed;
    public long Dropped;
}
