using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AotEvents.Http.Server.Transport;

/// <summary>
/// An accepted socket whose reads and writes go through an <see cref="EpollLoop"/> instead of the runtime's socket
/// engine: non-blocking <c>recv</c>/<c>send</c> straight from the caller, and a wait on the loop's edge-triggered report
/// only when the kernel has nothing (see <see cref="Readiness"/>). Accept, options, shutdown and close stay with the
/// <see cref="Socket"/>, whose handle reference-counting keeps a concurrent close from freeing the descriptor mid-call.
/// <para>
/// Usage contract (the connection's flow): at most one receive and one send in flight; <see cref="Shutdown"/> and
/// <see cref="Abort"/> may come from any thread; <see cref="Dispose"/> comes last, from the flow.
/// </para>
/// </summary>
internal sealed class ConnectionSocket : IDisposable
{
    private readonly Socket _socket;
    private readonly SafeSocketHandle _handle;
    private readonly int _fd;
    private readonly EpollLoop _loop;
    private readonly Readiness _read = new();
    private readonly Readiness _write = new();
    private int _disposed;

    /// <summary>Registers <paramref name="socket"/> (switched to non-blocking) with <paramref name="loop"/>.</summary>
    internal ConnectionSocket(Socket socket, EpollLoop loop)
    {
        _socket = socket;
        socket.Blocking = false;
        _handle = socket.SafeHandle;
        _fd = (int)_handle.DangerousGetHandle();
        _loop = loop;
        loop.Register(this, _fd);
    }

    /// <summary>The loop's registration (slot and generation), set by <see cref="EpollLoop.Register"/>.</summary>
    internal ulong Token { get; set; }

    /// <summary>Loop thread: an edge-triggered report for this socket.</summary>
    internal void OnEvents(uint events)
    {
        const uint Failed = LinuxSockets.EpollErr | LinuxSockets.EpollHup;
        if ((events & (LinuxSockets.EpollIn | LinuxSockets.EpollRdHup | Failed)) != 0)
        {
            _read.Signal();
        }
        if ((events & (LinuxSockets.EpollOut | Failed)) != 0)
        {
            _write.Signal();
        }
    }

    /// <summary>
    /// Completes when a read may find bytes (or the end): at once unless the last read drained the socket, else on the
    /// loop's next report (after which the socket is no longer known to be drained).
    /// </summary>
    internal ValueTask WaitReadableAsync() => _read.KnownNotReady ? _read.WaitAsync() : default;

    /// <summary>Reads what is there now: the byte count (0 at the end of the stream), or -1 if nothing is (no wait).</summary>
    internal int TryReceive(Span<byte> buffer)
    {
        if (_read.KnownNotReady)
        {
            return -1;
        }
        int reports = _read.Reports;
        int received = Receive(buffer);
        if (received < 0 || (received > 0 && received < buffer.Length))
        {
            _read.MarkDrained(reports); // EAGAIN, or a short read: the kernel's queue is empty (for now)
        }
        else
        {
            _read.MarkReady();
        }
        return received;
    }

    /// <summary>Reads at least one byte, waiting for it if need be; 0 at the end of the stream.</summary>
    internal ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        int received = TryReceive(buffer.Span);
        return received >= 0 ? new ValueTask<int>(received) : ReceiveSlowAsync(buffer);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReceiveSlowAsync(Memory<byte> buffer)
    {
        while (true)
        {
            await _read.WaitAsync();
            int received = TryReceive(buffer.Span);
            if (received >= 0)
            {
                return received;
            }
        }
    }

    /// <summary>Sends all of <paramref name="data"/>, waiting for room in the socket's buffer when it is full.</summary>
    internal ValueTask SendAsync(ReadOnlyMemory<byte> data)
    {
        int sent = TrySendAll(data.Span);
        return sent == data.Length ? default : SendSlowAsync(data, sent);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendSlowAsync(ReadOnlyMemory<byte> data, int sent)
    {
        while (sent < data.Length)
        {
            await _write.WaitAsync();
            sent += TrySendAll(data.Span[sent..]);
        }
    }

    /// <summary>Sends until done or the socket's buffer is full (then marks the write side drained); returns the bytes sent.</summary>
    private int TrySendAll(ReadOnlySpan<byte> data)
    {
        int total = 0;
        while (total < data.Length)
        {
            int reports = _write.Reports;
            int sent = Send(data[total..]);
            if (sent < 0)
            {
                _write.MarkDrained(reports);
                break;
            }
            total += sent;
        }
        return total;
    }

    private int Receive(Span<byte> buffer) => Transfer(buffer, send: false);

    private int Send(ReadOnlySpan<byte> data) => Transfer(data, send: true);

    /// <summary>One non-blocking recv or send: the byte count, or -1 for EAGAIN; other errors throw.</summary>
    private unsafe int Transfer(ReadOnlySpan<byte> buffer, bool send)
    {
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added); // ObjectDisposedException once closed
            while (true)
            {
                nint result;
                fixed (byte* pointer = buffer)
                {
                    result = send
                        ? LinuxSockets.Send(_fd, pointer, (nuint)buffer.Length, LinuxSockets.MsgNoSignal)
                        : LinuxSockets.Recv(_fd, pointer, (nuint)buffer.Length, 0);
                }
                if (result >= 0)
                {
                    return (int)result;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno == LinuxSockets.EAgain)
                {
                    return -1;
                }
                if (errno != LinuxSockets.EIntr)
                {
                    throw ToSocketException(errno);
                }
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    /// <summary>The errno values a connection meets, as the <see cref="SocketError"/> the runtime would report.</summary>
    private static SocketException ToSocketException(int errno) => new((int)(errno switch
    {
        32 => SocketError.Shutdown, // EPIPE
        103 => SocketError.ConnectionAborted,
        104 => SocketError.ConnectionReset,
        107 => SocketError.NotConnected,
        110 => SocketError.TimedOut,
        9 => SocketError.OperationAborted, // EBADF
        _ => SocketError.SocketError,
    }));

    /// <summary>Half- or fully closes; the kernel's report wakes whoever waits (a receive then returns 0).</summary>
    internal void Shutdown(SocketShutdown how) => _socket.Shutdown(how);

    /// <summary>
    /// Ends the connection from another thread (send timeout, forced drain): the close will be a reset, and shutting
    /// down both sides wakes any wait at once; the flow then fails or reads the end and disposes.
    /// </summary>
    internal void Abort()
    {
        try
        {
            _socket.LingerState = new LingerOption(true, 0);
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        // If the peer is already gone no report may follow: wake waiters directly (their next syscall fails or reads the end).
        _read.Close();
        _write.Close();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _loop.Unregister(this, _fd); // before the descriptor closes: its number may be reused at once
        _socket.Dispose();
        // Last: a waiter resumed now (inline, on this thread) must find the socket closed, not try it again.
        _read.Close();
        _write.Close();
    }
}
