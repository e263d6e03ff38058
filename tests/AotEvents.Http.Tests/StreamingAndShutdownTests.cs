using System.Net.Sockets;

namespace AotEvents.Http.Tests;

/// <summary>Streaming answers, client disconnects, and graceful shutdown.</summary>
public sealed class StreamingAndShutdownTests
{
    private static async Task<RawClient> OpenStreamAsync(TestServer server)
    {
        RawClient client = await server.ConnectAsync();
        await client.SendAsync("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal("HTTP/1.1 200 OK", await client.ReadLineAsync());
        List<string> headers = [];
        string line;
        while ((line = await client.ReadLineAsync()).Length > 0)
        {
            headers.Add(line);
        }
        Assert.Contains("Content-Type: text/event-stream", headers);
        Assert.Contains("Cache-Control: no-cache", headers);
        Assert.Contains("Connection: close", headers);
        Assert.DoesNotContain(headers, h => h.StartsWith("Content-Length", StringComparison.OrdinalIgnoreCase));
        Assert.Equal("data: hello", await client.ReadLineAsync());
        Assert.Equal("", await client.ReadLineAsync());
        return client;
    }

    [Fact]
    public async Task ClientDisconnectCancelsAborted()
    {
        await using TestServer server = new();
        RawClient client = await OpenStreamAsync(server);
        await server.Handler.StreamStarted.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(server.Handler.StreamEnded.Task.IsCompleted);
        // A streaming connection holds no pooled buffer while it waits.
        await TestServer.WaitUntilAsync(() => server.Server.BuffersOutstanding == 0, what: "stream holds no pooled buffer");

        client.Socket.Close();
        string reason = await server.Handler.StreamEnded.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("client", reason); // and the write after the disconnect reported failure
        await TestServer.WaitUntilAsync(() => server.Server.ConnectionCount == 0, what: "stream connection closed");
    }

    [Fact]
    public async Task StreamIsNotIdleTimedOutAndEndsOnShutdownAfterItsLastWrite()
    {
        TestServer server = new(o => new() { Port = 0, IdleTimeout = TimeSpan.FromMilliseconds(500), RequestTimeout = TimeSpan.FromMilliseconds(500), Log = o.Log });
        try
        {
            using RawClient client = await OpenStreamAsync(server);
            // Well past the idle timeout the stream is still open.
            Assert.False(await client.IsClosedWithinAsync(TimeSpan.FromMilliseconds(1500)));
            Assert.False(server.Handler.StreamEnded.Task.IsCompleted);

            Task drain = server.Server.DrainAsync(TimeSpan.FromSeconds(5));
            Assert.Equal("data: bye", await client.ReadLineAsync());
            Assert.Equal("", await client.ReadLineAsync());
            Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
            await drain.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal("shutdown", await server.Handler.StreamEnded.Task);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task DrainFinishesInFlightRequestsClosesIdleOnesAndRefusesNewConnections()
    {
        TestServer server = new();
        try
        {
            using RawClient idle = await server.ConnectAsync();
            await idle.SendAsync("GET /n/1 HTTP/1.1\r\n\r\n");
            Assert.Equal(200, (await idle.ReadResponseAsync()).Status);

            using RawClient busy = await server.ConnectAsync();
            await busy.SendAsync("GET /gate HTTP/1.1\r\n\r\n");
            await TestServer.WaitUntilAsync(() => server.Handler.Calls == 2, what: "gated request started");

            await server.Server.StopAcceptingAsync();
            Assert.True(server.Server.ShutdownToken.IsCancellationRequested);
            SocketException refused = await Assert.ThrowsAsync<SocketException>(async () =>
            {
                using RawClient late = await server.ConnectAsync();
            });
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);

            Task drain = server.Server.DrainAsync(TimeSpan.FromSeconds(5));
            Assert.True(await idle.IsClosedWithinAsync(TimeSpan.FromSeconds(2)));
            await Task.Delay(100);
            Assert.False(drain.IsCompleted); // the gated request is still running
            server.Handler.Gate.SetResult();

            HttpResult slow = await busy.ReadResponseAsync();
            Assert.Equal(200, slow.Status);
            Assert.Equal("gated", slow.BodyText);
            Assert.Equal("close", slow.Header("Connection"));
            Assert.True(await busy.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
            await drain.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(0, server.Server.ConnectionCount);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task DrainAbortsWhatDoesNotFinishInTime()
    {
        TestServer server = new();
        try
        {
            using RawClient busy = await server.ConnectAsync();
            await busy.SendAsync("GET /slow?ms=3000 HTTP/1.1\r\n\r\n");
            await TestServer.WaitUntilAsync(() => server.Handler.Calls == 1, what: "slow request started");
            System.Diagnostics.Stopwatch watch = System.Diagnostics.Stopwatch.StartNew();
            await server.Server.DrainAsync(TimeSpan.FromMilliseconds(300));
            Assert.True(await busy.IsClosedWithinAsync(TimeSpan.FromSeconds(1)));
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2.5), "drain waited for the handler instead of aborting");
        }
        finally
        {
            // The aborted handler finishes later; its connection is already gone.
            await TestServer.WaitUntilAsync(() => server.Server.ConnectionCount == 0, what: "connections gone");
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task StreamWriteToAVanishedClientReportsFailure()
    {
        await using TestServer server = new();
        RawClient client = await OpenStreamAsync(server);
        // Reset rather than FIN.
        client.Socket.LingerState = new LingerOption(true, 0);
        client.Socket.Close();
        Assert.Equal("client", await server.Handler.StreamEnded.Task.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.DoesNotContain(server.Logs, l => l.Contains("failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ClientThatStopsReadingIsCutOffBySendTimeout()
    {
        await using TestServer server = new(o => new() { Port = 0, SendTimeout = TimeSpan.FromMilliseconds(500), Log = o.Log });

        // A stream whose client never reads: the handler's write fails instead of hanging for ever.
        using RawClient streamClient = await server.ConnectAsync();
        streamClient.Socket.ReceiveBufferSize = 4096;
        await streamClient.SendAsync("GET /flood HTTP/1.1\r\n\r\n");
        (int writes, bool aborted) = await server.Handler.FloodEnded.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(aborted);
        Assert.InRange(writes, 0, 1000);

        // Pipelined requests for big answers, never read: the buffered send times out and the connection goes.
        using RawClient pipelined = await server.ConnectAsync();
        pipelined.Socket.ReceiveBufferSize = 4096;
        await pipelined.SendAsync(string.Concat(Enumerable.Repeat("GET /big HTTP/1.1\r\n\r\n", 64)));
        await TestServer.WaitUntilAsync(() => server.Server.ConnectionCount == 0, 10_000, "stalled connections aborted");
    }
}
