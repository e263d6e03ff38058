using System.Net.Sockets;
using System.Runtime.CompilerServices;
using AotEvents.Http.Server.Transport;

namespace AotEvents.Http.Server;

/// <summary>
/// One accepted socket: reads requests, runs the handler for each in order, writes the answers.
/// <para>
/// Memory: while idle the connection holds no buffer: it waits for readiness (the zero-byte receive of this design,
/// done by its <see cref="ConnectionSocket"/>) and rents a 4 KiB receive buffer from the server's pool only when bytes
/// are there; the send buffer is rented on the first answer and
/// returned after each send. Both go back whenever the input is drained, so an idle keep-alive or streaming
/// connection costs the socket and this object.
/// </para>
/// <para>
/// Timeouts: no timer per request. The connection publishes its phase and a deadline (two plain writes); the
/// server's one sweep timer checks them and expires a connection by shutting down its receive side, which makes the
/// pending receive return 0; the loop then answers 408 (request in progress) or just closes (idle, draining, lingering).
/// A request that arrives whole never starts the request timer (no clock read); one that needs another receive does.
/// A send that does not finish in time aborts the connection (a send the kernel takes at once is never timed).
/// </para>
/// </summary>
internal sealed partial class HttpConnection : IThreadPoolWorkItem
{
    internal const int PhaseIdle = 0;
    internal const int PhaseReading = 1;
    internal const int PhaseHandling = 2;
    internal const int PhaseStreaming = 3;
    internal const int PhaseLingering = 4;
    internal const int PhaseClosed = 5;

    private const int ExpiredNone = 0;
    private const int ExpiredRequest = 1;
    private const int ExpiredOther = 2;

    /// <summary>Buffered answers beyond this are sent without waiting for the input to drain.</summary>
    private const int FlushThreshold = 64 * 1024;

    /// <summary>How long and how much a closing connection reads and discards, so the peer sees our answer, not a reset.</summary>
    private const long LingerMilliseconds = 1000;
    private const int MaxLingerBytes = 1024 * 1024;

    private readonly HttpServer _server;
    private readonly ConnectionSocket _socket;
    private readonly BufferPool _pool;
    private readonly IHttpHandler _handler;
    private readonly HttpRequest _request = new();
    private readonly HttpResponse _response;
    private readonly int _maxHeaderBytes;
    private readonly long _maxBodyBytes;
    private readonly long _requestTimeoutMs;
    private readonly long _idleTimeoutMs;
    private readonly long _sendTimeoutMs;

    // Receive buffer: [_requestStart, _end) is the current request and any pipelined bytes behind it.
    private byte[]? _input;
    private int _requestStart;
    private int _end;

    // Current request's body when it did not fit in the receive buffer, and where the request ends in the input.
    private byte[]? _bodyArray;
    private ReadOnlyMemory<byte> _body;
    private int _requestLength;

    // Send buffer.
    private byte[]? _output;
    private int _outputLength;

    private HttpStream? _stream;

    // Read by the sweep timer.
    private int _phase;
    private long _deadline;
    private long _sendDeadline;
    private int _expired;

    internal int Slot = -1;
    internal long Sends;

    internal HttpConnection(HttpServer server, ConnectionSocket socket, BufferPool pool, IHttpHandler handler, HttpServerOptions options)
    {
        _server = server;
        _socket = socket;
        _pool = pool;
        _handler = handler;
        _response = new HttpResponse(this);
        _maxHeaderBytes = options.MaxHeaderBytes;
        _maxBodyBytes = options.MaxBodyBytes;
        _requestTimeoutMs = (long)options.RequestTimeout.TotalMilliseconds;
        _idleTimeoutMs = (long)options.IdleTimeout.TotalMilliseconds;
        _sendTimeoutMs = (long)options.SendTimeout.TotalMilliseconds;
        // The sweep may look at the connection before its loop first runs: give it a real deadline from the start.
        SetPhase(PhaseIdle, _idleTimeoutMs);
    }

    internal BufferPool Pool => _pool;

    internal bool IsServerDraining => _server.IsDraining;

    internal int Phase => Volatile.Read(ref _phase);

    internal void LogMessage(string message) => _server.LogMessage(message);

    void IThreadPoolWorkItem.Execute() => _ = RunAsync();

    private async Task RunAsync()
    {
        try
        {
            while (true)
            {
                if (_requestStart == _end)
                {
                    // Nothing buffered: send what is pending, give the buffer back, wait for data without a buffer.
                    if (_outputLength > 0)
                    {
                        await FlushAsync();
                    }
                    _requestStart = _end = 0;
                    ReturnInput();
                    SetPhase(PhaseIdle, _idleTimeoutMs);
                    if (_server.IsDraining || _expired != ExpiredNone)
                    {
                        return;
                    }
                    int received;
                    while (true)
                    {
                        // Costs no syscall when the last read drained the socket: the wait goes straight to the event loop.
                        await _socket.WaitReadableAsync();
                        if (_expired != ExpiredNone)
                        {
                            return;
                        }
                        _input = _pool.RentBlock();
                        received = _socket.TryReceive(_input);
                        if (received >= 0)
                        {
                            break;
                        }
                        ReturnInput(); // nothing after all (a new connection, or a report without bytes): wait without it
                    }
                    if (received == 0)
                    {
                        return;
                    }
                    _end = received;
                }

                // Blank lines before a request line are ignored (RFC 9112 §2.2).
                int skip = _input.AsSpan(_requestStart, _end - _requestStart).IndexOfAnyExcept((byte)'\r', (byte)'\n');
                if (skip < 0)
                {
                    _requestStart = _end;
                    continue;
                }
                _requestStart += skip;

                // Head.
                _request.ResetParse();
                int headLength;
                while (true)
                {
                    ParseStatus status = HttpParser.TryParseHead(_input.AsSpan(_requestStart, _end - _requestStart), _request, _maxHeaderBytes, out headLength);
                    if (status == ParseStatus.Complete)
                    {
                        break;
                    }
                    if (status != ParseStatus.Incomplete)
                    {
                        await CloseWithErrorAsync(status switch
                        {
                            ParseStatus.HeadersTooLarge => 431,
                            ParseStatus.VersionNotSupported => 505,
                            ParseStatus.NotImplemented => 501,
                            _ => 400,
                        });
                        return;
                    }
                    if (await ReceiveMoreAsync() == 0)
                    {
                        await CloseAfterReceiveEndedAsync();
                        return;
                    }
                }

                // Body.
                _body = default;
                _requestLength = headLength;
                long contentLength = _request._contentLength;
                if (contentLength > _maxBodyBytes)
                {
                    await CloseWithErrorAsync(413); // before reading any of it (and before any 100 Continue)
                    return;
                }
                if (_request._chunked || contentLength > 0)
                {
                    if (!_request._chunked && contentLength <= _end - _requestStart - headLength)
                    {
                        // Everything is here already: the common case.
                        _body = _input.AsMemory(_requestStart + headLength, (int)contentLength);
                        _requestLength = headLength + (int)contentLength;
                    }
                    else
                    {
                        int result = _request._chunked ? await ReadChunkedBodyAsync(headLength) : await ReadBodyAsync(headLength, contentLength);
                        if (result != 0)
                        {
                            if (result > 0)
                            {
                                await CloseWithErrorAsync(result);
                            }
                            else
                            {
                                await CloseAfterReceiveEndedAsync();
                            }
                            return;
                        }
                    }
                }

                // Handler.
                bool keepAlive = _request.KeepAlive && !_server.IsDraining;
                _request.Attach(_input!, _requestStart, _body);
                _response.Reset(_request._method == HttpMethod.Head, keepAlive, !_request._http11);
                Volatile.Write(ref _phase, PhaseHandling);
                try
                {
                    ValueTask pending = _handler.HandleAsync(_request, _response);
                    if (pending.IsCompletedSuccessfully)
                    {
                        pending.GetAwaiter().GetResult();
                    }
                    else
                    {
                        await pending;
                    }
                }
                catch (Exception ex)
                {
                    OnHandlerFailed(ex);
                }
                _request.Detach();
                ReturnBody();

                if (_stream is not null)
                {
                    await EndStreamAsync();
                    return; // a streamed answer ends with the connection
                }
                if (!_response.HasStarted)
                {
                    LogMessage("HTTP handler returned without an answer; sent 500");
                    _response.WriteServerError();
                }
                if (!_response.KeepAlive)
                {
                    await FlushAsync();
                    await LingerAsync();
                    return;
                }
                _requestStart += _requestLength;
                if (_outputLength >= FlushThreshold)
                {
                    await FlushAsync();
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or OperationCanceledException)
        {
            // Peer reset, or aborted by a send timeout / shutdown: nothing to answer.
        }
        catch (Exception ex)
        {
            LogMessage("HTTP connection failed: " + ex);
        }
        finally
        {
            Close();
        }
    }

    private void OnHandlerFailed(Exception ex)
    {
        string method = _request.IsAttached ? System.Text.Encoding.ASCII.GetString(_request.RawMethod) : _request._method.ToString();
        string path = _request.IsAttached ? System.Text.Encoding.UTF8.GetString(_request.Path) : "(released)";
        LogMessage($"HTTP handler failed on {method} {path}: {ex}");
        if (!_response.HasStarted)
        {
            _response.WriteServerError();
        }
        else if (_stream is null)
        {
            _response.ForceClose();
        }
    }

    /// <summary>Makes room at <see cref="_end"/>, sends pending answers, then receives. Returns the byte count (0: the receive side ended).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReceiveMoreAsync()
    {
        EnterReading();
        MakeRoom();
        if (_outputLength > 0)
        {
            await FlushAsync();
        }
        int received = await _socket.ReceiveAsync(_input.AsMemory(_end));
        _end += received;
        return received;
    }

    /// <summary>Ensures free space after <see cref="_end"/>: moves the request to the buffer's start, or grows the buffer.</summary>
    private void MakeRoom()
    {
        byte[] input = _input!;
        if (_end < input.Length)
        {
            return;
        }
        if (_requestStart > 0)
        {
            input.AsSpan(_requestStart, _end - _requestStart).CopyTo(input);
            _end -= _requestStart;
            _requestStart = 0;
            return;
        }
        byte[] bigger = _pool.Rent(input.Length * 2);
        input.AsSpan(0, _end).CopyTo(bigger);
        _pool.Return(input);
        _input = bigger;
    }

    /// <summary>Reads a Content-Length body that is not all here yet. 0: done; &gt;0: error status; -1: receive side ended.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadBodyAsync(int headLength, long contentLength)
    {
        EnterReading();
        int length = (int)contentLength;
        bool expectContinue = _request._expectContinue && _request._http11;
        if (headLength + length <= _input!.Length)
        {
            // Fits in the receive buffer (after moving the request to its start if need be).
            if (_requestStart + headLength + length > _input.Length)
            {
                _input.AsSpan(_requestStart, _end - _requestStart).CopyTo(_input);
                _end -= _requestStart;
                _requestStart = 0;
            }
            int bodyStart = _requestStart + headLength;
            if (expectContinue && _end == bodyStart)
            {
                WriteOutput(HttpStatus.Continue);
            }
            while (_end - bodyStart < length)
            {
                if (_outputLength > 0)
                {
                    await FlushAsync();
                }
                int received = await _socket.ReceiveAsync(_input.AsMemory(_end));
                if (received == 0)
                {
                    return ReceiveEndedStatus();
                }
                _end += received;
            }
            _body = _input.AsMemory(bodyStart, length);
            _requestLength = headLength + length;
            return 0;
        }

        // Larger than the receive buffer: a body array of its own, filled straight from the socket.
        byte[] body = _pool.Rent(length);
        _bodyArray = body;
        int have = Math.Min(_end - _requestStart - headLength, length);
        _input.AsSpan(_requestStart + headLength, have).CopyTo(body);
        _requestLength = headLength + have;
        if (expectContinue && have == 0)
        {
            WriteOutput(HttpStatus.Continue);
        }
        while (have < length)
        {
            if (_outputLength > 0)
            {
                await FlushAsync();
            }
            int received = await _socket.ReceiveAsync(body.AsMemory(have, length - have));
            if (received == 0)
            {
                return ReceiveEndedStatus();
            }
            have += received;
        }
        _body = body.AsMemory(0, length);
        return 0;
    }

    /// <summary>De-chunks a body into a pooled array. 0: done; &gt;0: error status; -1: receive side ended.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadChunkedBodyAsync(int headLength)
    {
        ChunkedDecoder decoder = default;
        BodyBuffer body = new(_pool);
        int position = headLength; // relative to _requestStart
        bool expectContinue = _request._expectContinue && _request._http11 && _end - _requestStart == headLength;
        try
        {
            while (true)
            {
                ChunkStatus status = decoder.Decode(
                    _input.AsSpan(_requestStart + position, _end - _requestStart - position), ref body, _maxBodyBytes, _maxHeaderBytes, out int consumed);
                position += consumed;
                switch (status)
                {
                    case ChunkStatus.Done:
                        _bodyArray = body.Array;
                        _body = body.Memory;
                        body = default;
                        _requestLength = position;
                        return 0;
                    case ChunkStatus.BadRequest:
                        return 400;
                    case ChunkStatus.TooLarge:
                        return 413;
                    case ChunkStatus.TrailersTooLarge:
                        return 431;
                }

                // Drop what was decoded, keeping the head (the request's spans point into it) and any partial line.
                if (position > headLength)
                {
                    int headEnd = _requestStart + headLength;
                    int start = _requestStart + position;
                    _input.AsSpan(start, _end - start).CopyTo(_input.AsSpan(headEnd));
                    _end -= start - headEnd;
                    position = headLength;
                }
                if (expectContinue)
                {
                    WriteOutput(HttpStatus.Continue);
                    expectContinue = false;
                }
                if (await ReceiveMoreAsync() == 0)
                {
                    return ReceiveEndedStatus();
                }
            }
        }
        finally
        {
            body.Release();
        }
    }

    private int ReceiveEndedStatus() => Volatile.Read(ref _expired) == ExpiredRequest ? 408 : -1;

    /// <summary>The receive side ended in the middle of a request: 408 if our sweep ended it, else the client left.</summary>
    private ValueTask CloseAfterReceiveEndedAsync() =>
        Volatile.Read(ref _expired) == ExpiredRequest ? CloseWithErrorAsync(408) : default;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask CloseWithErrorAsync(int status)
    {
        WriteOutput(HttpStatus.ErrorResponse(status));
        await FlushAsync();
        await LingerAsync();
    }

    /// <summary>
    /// Half-closes and reads until the client closes too (bounded in time and bytes), so unread request bytes in our
    /// socket don't turn the close into a reset that could destroy the answer before the client reads it.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask LingerAsync()
    {
        _socket.Shutdown(SocketShutdown.Send);
        SetPhase(PhaseLingering, Math.Min(LingerMilliseconds, _requestTimeoutMs));
        byte[] buffer = _input ??= _pool.RentBlock();
        _requestStart = _end = 0;
        int total = 0;
        while (total < MaxLingerBytes)
        {
            int received = await _socket.ReceiveAsync(buffer.AsMemory());
            if (received == 0)
            {
                break;
            }
            total += received;
        }
    }

    /// <summary>
    /// Ends a streamed answer cleanly: half-close so the client reads everything and then sees FIN, and wait
    /// (bounded) for it to close its side. Disposing the socket while the disconnect watcher still has a receive
    /// pending would otherwise send a reset instead of a close (SPEC §4: streams end cleanly).
    /// </summary>
    private async ValueTask EndStreamAsync()
    {
        if (_disconnectWatcher is null || !_stream!.IsClientConnected)
        {
            return;
        }
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            return;
        }
        await Task.WhenAny(_disconnectWatcher, Task.Delay((int)LingerMilliseconds));
    }

    /// <summary>
    /// A request is incomplete and the connection is about to wait for the rest: from now on the request timeout
    /// applies (once per request: more bytes do not extend it). A request that arrives whole never waits, so it
    /// never needs the clock read.
    /// </summary>
    private void EnterReading()
    {
        if (_phase != PhaseReading)
        {
            SetPhase(PhaseReading, _requestTimeoutMs);
        }
    }

    private void SetPhase(int phase, long timeoutMs)
    {
        // Deadline before phase: the sweep reads phase then deadline, so it never pairs a new phase with an old deadline.
        Volatile.Write(ref _deadline, Environment.TickCount64 + timeoutMs);
        Volatile.Write(ref _phase, phase);
    }

    /// <summary>Called by the sweep timer.</summary>
    internal void CheckTimeouts(long now)
    {
        long sendDeadline = Volatile.Read(ref _sendDeadline);
        if (sendDeadline != 0 && now >= sendDeadline)
        {
            Abort();
            return;
        }
        int phase = Volatile.Read(ref _phase);
        if (phase is PhaseIdle or PhaseReading or PhaseLingering && now >= Volatile.Read(ref _deadline))
        {
            Expire(phase == PhaseReading ? ExpiredRequest : ExpiredOther);
        }
    }

    /// <summary>Server drain: closes the connection now if no request is in progress.</summary>
    internal void CloseIfIdle()
    {
        if (Volatile.Read(ref _phase) == PhaseIdle)
        {
            Expire(ExpiredOther);
        }
    }

    private void Expire(int reason)
    {
        if (Interlocked.CompareExchange(ref _expired, reason, ExpiredNone) == ExpiredNone)
        {
            try
            {
                // Wakes the pending receive with 0 bytes; the connection loop does the rest on its own thread.
                _socket.Shutdown(SocketShutdown.Receive);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>Ends the connection at once (its close will be a reset): pending operations wake and the loop ends.</summary>
    internal void Abort()
    {
        _socket.Abort();
    }

    private void Close()
    {
        Volatile.Write(ref _phase, PhaseClosed);
        _request.Detach();
        ReturnBody();
        ReturnInput();
        ReturnOutput();
        _response.ReleaseHeaders();
        _stream?.Complete();
        try
        {
            _socket.Dispose();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        _server.OnConnectionClosed(this);
    }

    private void ReturnInput()
    {
        if (_input is not null)
        {
            _pool.Return(_input);
            _input = null;
        }
    }

    private void ReturnBody()
    {
        _body = default;
        if (_bodyArray is not null)
        {
            _pool.Return(_bodyArray);
            _bodyArray = null;
        }
    }

    private void ReturnOutput()
    {
        if (_output is not null)
        {
            _pool.Return(_output);
            _output = null;
        }
        _outputLength = 0;
    }
}
