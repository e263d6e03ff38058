using System.Net;
using System.Net.Sockets;
using AotEvents.Http.Server.Transport;

namespace AotEvents.Http.Server;

/// <summary>
/// HTTP/1.1 server on raw sockets: keep-alive, pipelining, Content-Length and chunked request bodies,
/// 100-continue, limits (431/413/400/408/503), streaming answers, graceful shutdown.
/// Shutdown: <see cref="StopAcceptingAsync"/> then <see cref="DrainAsync"/>; <see cref="DisposeAsync"/> does both at once.
/// </summary>
public sealed class HttpServer : IAsyncDisposable
{
    private readonly HttpServerOptions _options;
    private readonly IHttpHandler _handler;
    private readonly BufferPool _pool;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _sweepInterval;

    private readonly SlotTable<HttpConnection> _connections = new();

    private Socket? _listener;
    private EpollLoop[] _loops = [];
    private int _nextLoop;
    private Task _acceptLoop = Task.CompletedTask;
    private Timer? _sweepTimer;
    private int _connectionCount;
    private int _rejecting;
    private int _stopped;
    private volatile bool _draining;
    private long _closedConnectionSends;

    public HttpServer(HttpServerOptions options, IHttpHandler handler)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Port, IPEndPoint.MaxPort);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxHeaderBytes, 64);
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxBodyBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxBodyBytes, (long)Array.MaxLength);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1);
        if (options.RequestTimeout <= TimeSpan.Zero || options.IdleTimeout <= TimeSpan.Zero || options.SendTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "Timeouts must be positive.");
        }
        _options = options;
        _handler = handler;
        _pool = new BufferPool(options.MaxPooledBuffers > 0 ? options.MaxPooledBuffers : 32 * Environment.ProcessorCount);
        // Deadlines are checked a few times per timeout (at least once a second), so one is missed by at most a quarter.
        double shortest = Math.Min(Math.Min(options.RequestTimeout.TotalMilliseconds, options.IdleTimeout.TotalMilliseconds), options.SendTimeout.TotalMilliseconds);
        _sweepInterval = TimeSpan.FromMilliseconds(Math.Clamp(shortest / 4, 10, 1000));
    }

    /// <summary>Open connections (not counting ones being refused with 503).</summary>
    public int ConnectionCount => Volatile.Read(ref _connectionCount);

    /// <summary>Cancelled when shutdown starts (<see cref="StopAcceptingAsync"/>); streaming handlers end on it.</summary>
    public CancellationToken ShutdownToken => _shutdown.Token;

    internal bool IsDraining => _draining;

    /// <summary>Pooled buffers currently rented (0 when no request is in progress: tests check for leaks with it).</summary>
    internal long BuffersOutstanding => _pool.Outstanding;

    /// <summary>Sends made by closed connections (tests check pipelined answers leave together).</summary>
    internal long SendsByClosedConnections => Interlocked.Read(ref _closedConnectionSends);

    /// <summary>Binds and listens; returns the actual endpoint (the chosen port when <see cref="HttpServerOptions.Port"/> is 0).</summary>
    public IPEndPoint Start()
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException("The server is already started.");
        }
        IPAddress address = ResolveHost(_options.Host);
        Socket listener = new(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.Equals(IPAddress.IPv6Any))
            {
                listener.DualMode = true;
            }
            // No ReuseAddress: on Linux .NET maps it to SO_REUSEPORT too, which would let a second
            // daemon bind the same port and silently take half the connections. .NET already sets
            // SO_REUSEADDR on Unix listeners, so a restart still rebinds past TIME_WAIT.
            listener.Bind(new IPEndPoint(address, _options.Port));
            listener.Listen(_options.Backlog);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        // Connections' reads and writes: one event loop thread per four cores (one on the small VMs this runs in).
        _loops = new EpollLoop[Math.Clamp(Environment.ProcessorCount / 4, 1, 4)];
        for (int i = 0; i < _loops.Length; i++)
        {
            _loops[i] = new EpollLoop("http-loop-" + i, _options.Log);
        }
        _sweepTimer = new Timer(static state => ((HttpServer)state!).Sweep(), this, _sweepInterval, _sweepInterval);
        _acceptLoop = AcceptLoopAsync(listener);
        return (IPEndPoint)listener.LocalEndPoint!;
    }

    private static IPAddress ResolveHost(string host)
    {
        if (host is "*" or "+" or "")
        {
            return IPAddress.Any;
        }
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return IPAddress.Loopback;
        }
        if (IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? address))
        {
            return address;
        }
        IPAddress[] addresses = Dns.GetHostAddresses(host);
        foreach (IPAddress candidate in addresses)
        {
            if (candidate.AddressFamily == AddressFamily.InterNetwork)
            {
                return candidate;
            }
        }
        return addresses.Length > 0 ? addresses[0] : throw new ArgumentException($"Host '{host}' has no address.");
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        // Off the caller's thread: Start returns at once.
        await Task.Yield();
        while (true)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ObjectDisposedException || (ex is SocketException && Volatile.Read(ref _stopped) != 0))
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of file descriptors and the like: back off a little instead of spinning.
                LogMessage("HTTP accept failed: " + ex.Message);
                await Task.Delay(50).ConfigureAwait(false);
                continue;
            }

            try
            {
                socket.NoDelay = true;
            }
            catch (SocketException)
            {
                socket.Dispose();
                continue;
            }
            if (Volatile.Read(ref _connectionCount) >= _options.MaxConnections || _draining)
            {
                Refuse(socket);
                continue;
            }
            ConnectionSocket connectionSocket;
            try
            {
                connectionSocket = new ConnectionSocket(socket, _loops[_nextLoop++ % _loops.Length]);
            }
            catch (SocketException ex)
            {
                LogMessage("HTTP connection setup failed: " + ex.Message);
                socket.Dispose();
                continue;
            }
            Interlocked.Increment(ref _connectionCount);
            HttpConnection connection = new(this, connectionSocket, _pool, _handler, _options);
            Register(connection);
            ThreadPool.UnsafeQueueUserWorkItem(connection, preferLocal: false);
        }
    }

    /// <summary>Over the connection cap: 503 and close, reading what the client sent meanwhile (briefly) so it sees the answer.</summary>
    private void Refuse(Socket socket)
    {
        try
        {
            // A fresh socket's send buffer is empty: this does not block.
            socket.Send(HttpStatus.ServiceUnavailable);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            socket.Dispose();
            return;
        }
        if (Interlocked.Increment(ref _rejecting) > 256)
        {
            Interlocked.Decrement(ref _rejecting);
            socket.Dispose();
            return;
        }
        _ = DrainRefusedAsync(socket);
    }

    private async Task DrainRefusedAsync(Socket socket)
    {
        try
        {
            using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(1));
            byte[] scratch = new byte[512];
            while (await socket.ReceiveAsync(scratch.AsMemory(), SocketFlags.None, timeout.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        finally
        {
            socket.Dispose();
            Interlocked.Decrement(ref _rejecting);
        }
    }

    private void Register(HttpConnection connection) => connection.Slot = _connections.Add(connection);

    internal void OnConnectionClosed(HttpConnection connection)
    {
        Interlocked.Add(ref _closedConnectionSends, connection.Sends);
        _connections.Remove(connection.Slot, connection);
        connection.Slot = -1;
        if (Interlocked.Decrement(ref _connectionCount) == 0 && _draining)
        {
            _allClosed.TrySetResult();
        }
    }

    /// <summary>One pass over all connections per interval: the only timer there is.</summary>
    private void Sweep()
    {
        long now = Environment.TickCount64;
        HttpConnection?[] slots = _connections.Items;
        foreach (HttpConnection? connection in slots)
        {
            connection?.CheckTimeouts(now);
        }
    }

    private void ForEachConnection(Action<HttpConnection> action)
    {
        HttpConnection?[] slots = _connections.Items;
        foreach (HttpConnection? connection in slots)
        {
            if (connection is not null)
            {
                action(connection);
            }
        }
    }

    /// <summary>Shutdown step 1: stops listening and cancels <see cref="ShutdownToken"/>. Open connections carry on.</summary>
    public async Task StopAcceptingAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            _listener?.Dispose();
            try
            {
                await _shutdown.CancelAsync().ConfigureAwait(false);
            }
            catch (AggregateException ex)
            {
                LogMessage("a ShutdownToken callback threw: " + ex.InnerException?.Message);
            }
        }
        await _acceptLoop.ConfigureAwait(false);
    }

    /// <summary>
    /// Shutdown step 2: closes idle connections now; requests in progress finish and their connections close after
    /// the answer; streaming handlers are expected to end on <see cref="ShutdownToken"/>. Whatever is still open after
    /// <paramref name="timeout"/> is aborted (sockets closed); the call then returns within about a second even if a
    /// handler ignores <see cref="ShutdownToken"/> and keeps running.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        await StopAcceptingAsync().ConfigureAwait(false);
        _draining = true;
        if (Volatile.Read(ref _connectionCount) == 0)
        {
            _allClosed.TrySetResult();
        }
        ForEachConnection(static c => c.CloseIfIdle());
        Task all = _allClosed.Task;
        if (timeout > TimeSpan.Zero && await Task.WhenAny(all, Task.Delay(timeout)).ConfigureAwait(false) == all)
        {
            return;
        }
        if (!all.IsCompleted)
        {
            // Closing the sockets ends every connection waiting on I/O at once; one whose handler is still running
            // ends when the handler returns (its answer goes nowhere). Don't wait long for those.
            ForEachConnection(static c => c.Abort());
            await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
        }
    }

    /// <summary>Stops accepting and aborts every connection still open.</summary>
    public async ValueTask DisposeAsync()
    {
        await DrainAsync(TimeSpan.Zero).ConfigureAwait(false);
        if (_sweepTimer is not null)
        {
            await _sweepTimer.DisposeAsync().ConfigureAwait(false);
        }
        if (Volatile.Read(ref _connectionCount) == 0)
        {
            // Every connection has unregistered; one whose handler ignored the drain keeps its loop (a background thread).
            foreach (EpollLoop loop in _loops)
            {
                loop.Dispose();
            }
        }
        // _shutdown is not disposed: handlers may still hold ShutdownToken, and a CancellationTokenSource without a
        // timer owns nothing that needs releasing.
    }

    internal void LogMessage(string message)
    {
        try
        {
            _options.Log?.Invoke(message);
        }
        catch (Exception)
        {
            // A failing log sink must not take the server down.
        }
    }
}
