using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace AotEvents.Http.Server;

internal sealed partial class HttpConnection
{
    /// <summary>A span of at least <paramref name="length"/> bytes at the end of the send buffer.</summary>
    internal Span<byte> GetOutputSpan(int length)
    {
        byte[]? output = _output;
        if (output is null)
        {
            _output = output = _pool.Rent(length);
        }
        else if (output.Length - _outputLength < length)
        {
            byte[] bigger = _pool.Rent(Math.Max(output.Length * 2, _outputLength + length));
            output.AsSpan(0, _outputLength).CopyTo(bigger);
            _pool.Return(output);
            _output = output = bigger;
        }
        return output.AsSpan(_outputLength);
    }

    internal void AdvanceOutput(int length) => _outputLength += length;

    private void WriteOutput(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(GetOutputSpan(bytes.Length));
        _outputLength += bytes.Length;
    }

    /// <summary>
    /// Sends all of <paramref name="data"/>. The send deadline runs only while the socket's buffer is full: a send the
    /// kernel takes at once (nearly all of them) costs no clock read.
    /// </summary>
    private ValueTask SendTimedAsync(ReadOnlyMemory<byte> data)
    {
        ValueTask send = _socket.SendAsync(data);
        return send.IsCompletedSuccessfully ? default : AwaitTimedAsync(send);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitTimedAsync(ValueTask send)
    {
        Volatile.Write(ref _sendDeadline, Environment.TickCount64 + _sendTimeoutMs);
        try
        {
            await send;
        }
        finally
        {
            Volatile.Write(ref _sendDeadline, 0);
        }
    }

    /// <summary>Sends the whole send buffer, then returns it to the pool.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FlushAsync()
    {
        byte[]? output = _output;
        int length = _outputLength;
        if (output is null || length == 0)
        {
            return;
        }
        await SendTimedAsync(output.AsMemory(0, length));
        Sends++;
        _outputLength = 0;
        _output = null;
        _pool.Return(output);
    }

    /// <summary>
    /// From <see cref="HttpResponse.StartStreamingAsync"/>: releases the request's memory, sends the buffered head
    /// (after any earlier pipelined answers), and starts watching for the client leaving.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<HttpStream> BeginStreamingAsync()
    {
        _request.Detach();
        ReturnBody();
        ReturnInput();
        _requestStart = _end = _requestLength = 0;
        HttpStream stream = new(this, _server.ShutdownToken);
        _stream = stream;
        Volatile.Write(ref _phase, PhaseStreaming);
        try
        {
            await FlushAsync();
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
            stream.MarkClientGone();
            return stream;
        }
        _disconnectWatcher = WatchForDisconnectAsync(stream);
        return stream;
    }

    /// <summary>
    /// Keeps a receive pending while a handler streams: it returns 0 on FIN and throws on RST or when the socket closes,
    /// which is how a vanished client is noticed without writing to it. Bytes the client sends meanwhile are discarded.
    /// </summary>
    private Task? _disconnectWatcher;

    private async Task WatchForDisconnectAsync(HttpStream stream)
    {
        byte[] scratch = new byte[16];
        try
        {
            while (await _socket.ReceiveAsync(scratch.AsMemory()) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        stream.MarkClientGone();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    internal async ValueTask<bool> StreamSendAsync(HttpStream stream, ReadOnlyMemory<byte> data)
    {
        try
        {
            await SendTimedAsync(data);
            Sends++;
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
            stream.MarkClientGone();
            return false;
        }
    }
}
