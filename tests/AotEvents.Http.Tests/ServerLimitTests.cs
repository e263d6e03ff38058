using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using AotEvents.Http.Server;

namespace AotEvents.Http.Tests;

/// <summary>Limits and timeouts: 400, 431, 413, 408, idle close, 503.</summary>
public sealed class ServerLimitTests
{
    [Theory]
    [InlineData("HELLO WORLD\r\n\r\n", 400)]
    [InlineData("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400)]
    [InlineData("GET / HTTP/2.0\r\n\r\n", 505)]
    [InlineData("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501)]
    [InlineData("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400)]
    public async Task MalformedRequestsAreAnsweredAndClosed(string request, int status)
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync(request);
        HttpResult response = await client.ReadResponseAsync();
        Assert.Equal(status, response.Status);
        Assert.Equal("close", response.Header("Connection"));
        Assert.Equal("application/json", response.Header("Content-Type"));
        Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        Assert.Equal(0, server.Handler.Calls);
    }

    [Fact]
    public async Task HeadOver16KiBIs431AndJustUnderIsServed()
    {
        await using TestServer server = new();
        using (RawClient client = await server.ConnectAsync())
        {
            string head = "GET /header?name=x HTTP/1.1\r\nX: " + new string('a', 16 * 1024) + "\r\n\r\n";
            await client.SendAsync(head);
            HttpResult response = await client.ReadResponseAsync();
            Assert.Equal(431, response.Status);
            Assert.Equal("close", response.Header("Connection"));
            Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        }
        using (RawClient client = await server.ConnectAsync())
        {
            string value = new('b', 16 * 1024 - 100);
            await client.SendAsync("GET /header?name=x HTTP/1.1\r\nX: " + value + "\r\n\r\n");
            HttpResult response = await client.ReadResponseAsync();
            Assert.Equal(200, response.Status);
            Assert.Equal(value, response.BodyText);
        }
        // A head that never ends is cut at the limit too (431, not a wait for more).
        using (RawClient client = await server.ConnectAsync())
        {
            await client.SendAsync("GET / HTTP/1.1\r\n" + new string('c', 20_000));
            Assert.Equal(431, (await client.ReadResponseAsync()).Status);
        }
    }

    [Fact]
    public async Task BodyOverTheLimitIs413ByContentLengthAndByChunkedSize()
    {
        await using TestServer server = new(o => new() { Port = 0, MaxBodyBytes = 1024, Log = o.Log });
        using (RawClient client = await server.ConnectAsync())
        {
            await client.SendAsync("POST /echo HTTP/1.1\r\nContent-Length: 1025\r\n\r\n");
            HttpResult response = await client.ReadResponseAsync();
            Assert.Equal(413, response.Status);
            Assert.Equal("close", response.Header("Connection"));
            Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        }
        using (RawClient client = await server.ConnectAsync())
        {
            // Head and whole body in one send: still refused on the Content-Length.
            await client.SendAsync("POST /echo HTTP/1.1\r\nContent-Length: 1100\r\n\r\n" + new string('x', 1100));
            Assert.Equal(413, (await client.ReadResponseAsync()).Status);
            Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        }
        using (RawClient client = await server.ConnectAsync())
        {
            await client.SendAsync("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n" + new string('a', 512) + "\r\n");
            await client.SendAsync("200\r\n" + new string('b', 512) + "\r\n");
            await client.SendAsync("1\r\nc\r\n");
            HttpResult response = await client.ReadResponseAsync();
            Assert.Equal(413, response.Status);
            Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        }
        using (RawClient client = await server.ConnectAsync())
        {
            // Exactly at the limit is fine.
            await client.SendAsync("POST /echo HTTP/1.1\r\nContent-Length: 1024\r\n\r\n" + new string('d', 1024));
            HttpResult response = await client.ReadResponseAsync();
            Assert.Equal(200, response.Status);
            Assert.Equal(1024, response.Body.Length);
        }
        Assert.Equal(1, server.Handler.Calls);
    }

    [Fact]
    public async Task SlowLorisIsCutOffWith408WithinTheRequestTimeout()
    {
        await using TestServer server = new(o => new() { Port = 0, RequestTimeout = TimeSpan.FromSeconds(1), Log = o.Log });
        using RawClient client = await server.ConnectAsync();
        byte[] request = Encoding.ASCII.GetBytes("GET /n/1 HTTP/1.1\r\nHost: x\r\nX-Slow: " + new string('z', 100) + "\r\n\r\n");
        Stopwatch watch = Stopwatch.StartNew();
        using CancellationTokenSource stop = new();
        Task trickle = Task.Run(async () =>
        {
            // One byte every 100 ms: the whole head would take 13 s.
            foreach (byte b in request)
            {
                try
                {
                    await client.Socket.SendAsync(new[] { b }, SocketFlags.None, stop.Token);
                    await Task.Delay(100, stop.Token);
                }
                catch (Exception)
                {
                    return;
                }
            }
        });
        HttpResult response = await client.ReadResponseAsync(timeout: TimeSpan.FromSeconds(4));
        TimeSpan elapsed = watch.Elapsed;
        await stop.CancelAsync();
        await trickle;
        Assert.Equal(408, response.Status);
        Assert.Equal("close", response.Header("Connection"));
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(900), TimeSpan.FromMilliseconds(2200));
        Assert.Equal(0, server.Handler.Calls);
        await TestServer.WaitUntilAsync(() => server.Server.ConnectionCount == 0, what: "slow connection closed");
    }

    [Fact]
    public async Task BodyThatDoesNotArriveInTimeIs408()
    {
        await using TestServer server = new(o => new() { Port = 0, RequestTimeout = TimeSpan.FromSeconds(1), Log = o.Log });
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
        HttpResult response = await client.ReadResponseAsync(timeout: TimeSpan.FromSeconds(4));
        Assert.Equal(408, response.Status);
        Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
    }

    [Fact]
    public async Task SlowHandlerIsNotARequestTimeout()
    {
        await using TestServer server = new(o => new() { Port = 0, RequestTimeout = TimeSpan.FromMilliseconds(500), IdleTimeout = TimeSpan.FromMilliseconds(500), Log = o.Log });
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("GET /slow?ms=1200 HTTP/1.1\r\n\r\n");
        HttpResult response = await client.ReadResponseAsync();
        Assert.Equal(200, response.Status);
        Assert.Equal("slow", response.BodyText);
    }

    [Fact]
    public async Task IdleKeepAliveConnectionIsClosedAfterTheIdleTimeout()
    {
        await using TestServer server = new(o => new() { Port = 0, IdleTimeout = TimeSpan.FromSeconds(1), Log = o.Log });
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("GET /n/1 HTTP/1.1\r\n\r\n");
        Assert.Equal(200, (await client.ReadResponseAsync()).Status);
        Stopwatch watch = Stopwatch.StartNew();
        Assert.False(await client.IsClosedWithinAsync(TimeSpan.FromMilliseconds(700)));
        Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(900), TimeSpan.FromMilliseconds(2200));
        await TestServer.WaitUntilAsync(() => server.Server.ConnectionCount == 0, what: "idle connection gone");
    }

    [Fact]
    public async Task ConnectionsBeyondTheCapGet503()
    {
        await using TestServer server = new(o => new() { Port = 0, MaxConnections = 2, Log = o.Log });
        using RawClient first = await server.ConnectAsync();
        using RawClient second = await server.ConnectAsync();
        foreach (RawClient c in new[] { first, second })
        {
            await c.SendAsync("GET /n/ok HTTP/1.1\r\n\r\n");
            Assert.Equal(200, (await c.ReadResponseAsync()).Status);
        }
        using (RawClient third = await server.ConnectAsync())
        {
            await third.SendAsync("GET /n/3 HTTP/1.1\r\n\r\n");
            HttpResult refused = await third.ReadResponseAsync();
            Assert.Equal(503, refused.Status);
            Assert.Equal("close", refused.Header("Connection"));
            Assert.True(await third.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        }
        Assert.Equal(2, server.Server.ConnectionCount);

        first.Dispose();
        await TestServer.WaitUntilAsync(() => server.Server.ConnectionCount == 1, what: "first connection closed");
        using RawClient fourth = await server.ConnectAsync();
        await fourth.SendAsync("GET /n/4 HTTP/1.1\r\n\r\n");
        Assert.Equal("4", (await fourth.ReadResponseAsync()).BodyText);
    }

    [Fact]
    public void OptionsAreValidated()
    {
        TestHandler handler = new();
        Assert.Throws<ArgumentOutOfRangeException>(() => new HttpServer(new HttpServerOptions { Port = -1 }, handler));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HttpServer(new HttpServerOptions { MaxConnections = 0 }, handler));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HttpServer(new HttpServerOptions { IdleTimeout = TimeSpan.Zero }, handler));
    }
}
