using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using AotEvents.Http.Server;

namespace AotEvents.Http.Tests;

/// <summary>A real <see cref="HttpServer"/> on a free loopback port; disposing drains it and checks no pooled buffer leaked.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    public HttpServer Server { get; }
    public IPEndPoint EndPoint { get; }
    public TestHandler Handler { get; }
    public ConcurrentQueue<string> Logs { get; } = new();

    public TestServer(Func<HttpServerOptions, HttpServerOptions>? configure = null, TestHandler? handler = null)
    {
        Handler = handler ?? new TestHandler();
        HttpServerOptions options = new() { Host = "127.0.0.1", Port = 0, Log = Logs.Enqueue };
        if (configure is not null)
        {
            options = configure(options);
        }
        Server = new HttpServer(options, Handler);
        EndPoint = Server.Start();
    }

    public Task<RawClient> ConnectAsync() => RawClient.ConnectAsync(EndPoint);

    /// <summary>Waits until <paramref name="condition"/> holds (polling), failing after <paramref name="timeoutMs"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, int timeoutMs = 5000, string what = "condition")
    {
        long end = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            if (Environment.TickCount64 > end)
            {
                Assert.Fail($"timed out waiting for {what}");
            }
            await Task.Delay(10);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DrainAsync(TimeSpan.FromSeconds(2));
        Assert.Equal(0, Server.ConnectionCount);
        Assert.Equal(0, Server.BuffersOutstanding);
        await Server.DisposeAsync();
    }
}

/// <summary>Routes used by the socket tests.</summary>
internal sealed class TestHandler : IHttpHandler
{
    public TaskCompletionSource<string> StreamEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource StreamStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public ConcurrentQueue<string> Seen { get; } = new();
    /// <summary>'/gate' answers once the test completes this.</summary>
    public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int Calls;

    public async ValueTask HandleAsync(HttpRequest request, HttpResponse response)
    {
        Interlocked.Increment(ref Calls);
        string path = Encoding.ASCII.GetString(request.Path);
        Seen.Enqueue(request.Method + " " + path);
        switch (path)
        {
            case "/echo":
                response.AddHeader("X-Method"u8, request.RawMethod);
                response.AddHeader("X-Query"u8, request.Query);
                response.Write(200, "application/octet-stream"u8, request.Body.Span);
                return;
            case "/header":
                request.TryGetQuery("name"u8, out string name);
                response.Write(200, "text/plain"u8, request.GetHeader(Encoding.ASCII.GetBytes(name)));
                return;
            case "/slow":
                request.TryGetQuery("ms"u8, out string ms);
                await Task.Delay(int.Parse(ms, System.Globalization.CultureInfo.InvariantCulture));
                response.Write(200, "text/plain"u8, "slow"u8);
                return;
            case "/gate":
                await Gate.Task;
                response.Write(200, "text/plain"u8, "gated"u8);
                return;
            case "/throw":
                throw new InvalidOperationException("boom");
            case "/throw-async":
                await Task.Yield();
                throw new InvalidOperationException("async boom");
            case "/none":
                return;
            case "/nocontent":
                response.Write(204, default, default);
                return;
            case "/stream":
                await StreamAsync(response);
                return;
            case "/flood":
                await FloodAsync(response);
                return;
            case "/big":
                response.Write(200, "application/octet-stream"u8, new byte[256 * 1024]);
                return;
            default:
                if (path.StartsWith("/n/", StringComparison.Ordinal))
                {
                    response.Write(200, "text/plain"u8, request.Path[3..]);
                    return;
                }
                response.Write(404, "text/plain"u8, "not found"u8);
                return;
        }
    }

    /// <summary>Writes 64 KiB pieces until a write fails; reports how many succeeded and whether Aborted fired.</summary>
    public TaskCompletionSource<(int Writes, bool Aborted)> FloodEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task FloodAsync(HttpResponse response)
    {
        HttpStream stream = await response.StartStreamingAsync(200, "application/octet-stream"u8);
        byte[] piece = new byte[64 * 1024];
        int writes = 0;
        while (writes < 100_000 && await stream.TryWriteAsync(piece))
        {
            writes++;
        }
        FloodEnded.TrySetResult((writes, stream.Aborted.IsCancellationRequested));
    }

    private async Task StreamAsync(HttpResponse response)
    {
        response.AddHeader("Cache-Control"u8, "no-cache"u8);
        HttpStream stream = await response.StartStreamingAsync(200, "text/event-stream"u8);
        await stream.WriteAsync("data: hello\n\n"u8.ToArray());
        StreamStarted.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, stream.Aborted);
        }
        catch (OperationCanceledException)
        {
        }
        if (stream.IsShuttingDown)
        {
            bool wrote = await stream.TryWriteAsync("data: bye\n\n"u8.ToArray());
            StreamEnded.TrySetResult(wrote ? "shutdown" : "shutdown-write-failed");
        }
        else
        {
            bool wrote = await stream.TryWriteAsync("data: after\n\n"u8.ToArray());
            StreamEnded.TrySetResult(wrote ? "client-but-write-ok" : "client");
        }
    }
}

internal sealed record HttpResult(int Status, List<KeyValuePair<string, string>> Headers, byte[] Body)
{
    public string BodyText => Encoding.UTF8.GetString(Body);

    public string? Header(string name)
    {
        foreach (KeyValuePair<string, string> h in Headers)
        {
            if (string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return h.Value;
            }
        }
        return null;
    }
}

/// <summary>Raw-bytes HTTP client over a socket: writes exactly what the test says, parses what comes back.</summary>
internal sealed class RawClient : IDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private readonly byte[] _buffer = new byte[1 << 20];
    private int _start;
    private int _end;

    public Socket Socket { get; }

    private RawClient(Socket socket) => Socket = socket;

    public static async Task<RawClient> ConnectAsync(IPEndPoint endPoint)
    {
        Socket socket = new(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint);
        return new RawClient(socket);
    }

    public Task SendAsync(string text) => SendAsync(Encoding.Latin1.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        int sent = 0;
        while (sent < bytes.Length)
        {
            sent += await Socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
        }
    }

    /// <summary>Reads more bytes; false at end of stream. Throws on timeout.</summary>
    private async Task<bool> FillAsync(TimeSpan timeout)
    {
        if (_start > 0 && _start == _end)
        {
            _start = _end = 0;
        }
        using CancellationTokenSource cts = new(timeout);
        int n;
        try
        {
            n = await Socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("no bytes from the server within " + timeout);
        }
        _end += n;
        return n > 0;
    }

    public async Task<string> ReadLineAsync(TimeSpan? timeout = null)
    {
        while (true)
        {
            int lf = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (lf >= 0)
            {
                string line = Encoding.Latin1.GetString(_buffer, _start, lf).TrimEnd('\r');
                _start += lf + 1;
                return line;
            }
            if (!await FillAsync(timeout ?? DefaultTimeout))
            {
                throw new EndOfStreamException("connection closed while reading a line");
            }
        }
    }

    public async Task<byte[]> ReadExactlyAsync(int count, TimeSpan? timeout = null)
    {
        while (_end - _start < count)
        {
            if (!await FillAsync(timeout ?? DefaultTimeout))
            {
                throw new EndOfStreamException($"connection closed with {_end - _start} of {count} bytes");
            }
        }
        byte[] result = _buffer.AsSpan(_start, count).ToArray();
        _start += count;
        return result;
    }

    /// <summary>Reads one response (status line, fields, Content-Length body or, without one, the body up to the close).</summary>
    public async Task<HttpResult> ReadResponseAsync(bool headRequest = false, TimeSpan? timeout = null)
    {
        string statusLine = await ReadLineAsync(timeout);
        Assert.StartsWith("HTTP/1.1 ", statusLine);
        int status = int.Parse(statusLine.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture);
        List<KeyValuePair<string, string>> headers = [];
        while (true)
        {
            string line = await ReadLineAsync(timeout);
            if (line.Length == 0)
            {
                break;
            }
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            headers.Add(new(line[..colon], line[(colon + 1)..].Trim()));
        }
        HttpResult result = new(status, headers, []);
        if (status is 100 or 204 or 304 || headRequest)
        {
            return result;
        }
        string? length = result.Header("Content-Length");
        byte[] body = length is not null
            ? await ReadExactlyAsync(int.Parse(length, System.Globalization.CultureInfo.InvariantCulture), timeout)
            : await ReadToEndAsync(timeout);
        return result with { Body = body };
    }

    /// <summary>Reads until the server closes; throws if it does not within the timeout.</summary>
    public async Task<byte[]> ReadToEndAsync(TimeSpan? timeout = null)
    {
        try
        {
            while (await FillAsync(timeout ?? DefaultTimeout))
            {
            }
        }
        catch (SocketException)
        {
            // reset counts as closed
        }
        byte[] result = _buffer.AsSpan(_start, _end - _start).ToArray();
        _start = _end;
        return result;
    }

    /// <summary>True if the server closes (FIN or reset) within the timeout with no further bytes; false if still open.</summary>
    public async Task<bool> IsClosedWithinAsync(TimeSpan timeout)
    {
        try
        {
            return !await FillAsync(timeout) && _end == _start;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public void Dispose() => Socket.Dispose();
}
