using System.Text;

namespace AotEvents.Http.Tests;

/// <summary>Real sockets against a real server: keep-alive, pipelining, bodies, 100-continue, handler failures.</summary>
public sealed class ServerProtocolTests
{
    [Fact]
    public async Task KeepAliveServesSeveralRequestsOnOneConnection()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        for (int i = 0; i < 3; i++)
        {
            await client.SendAsync($"GET /n/{i} HTTP/1.1\r\nHost: x\r\n\r\n");
            HttpResult response = await client.ReadResponseAsync();
            Assert.Equal(200, response.Status);
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), response.BodyText);
            Assert.Equal("text/plain", response.Header("Content-Type"));
            Assert.Null(response.Header("Connection"));
        }
        Assert.Equal(1, server.Server.ConnectionCount);
        // Idle between requests: the connection holds no pooled buffer.
        await TestServer.WaitUntilAsync(() => server.Server.BuffersOutstanding == 0, what: "buffers returned while idle");
    }

    [Fact]
    public async Task Http10ClosesUnlessKeepAliveIsAsked()
    {
        await using TestServer server = new();
        using (RawClient client = await server.ConnectAsync())
        {
            await client.SendAsync("GET /n/a HTTP/1.0\r\n\r\n");
            HttpResult response = await client.ReadResponseAsync();
            Assert.Equal("a", response.BodyText);
            Assert.Equal("close", response.Header("Connection"));
            Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        }
        using (RawClient client = await server.ConnectAsync())
        {
            await client.SendAsync("GET /n/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            HttpResult first = await client.ReadResponseAsync();
            Assert.Equal("keep-alive", first.Header("Connection"));
            await client.SendAsync("GET /n/c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            Assert.Equal("c", (await client.ReadResponseAsync()).BodyText);
        }
    }

    [Fact]
    public async Task ConnectionCloseRequestGetsCloseAndTheConnectionEnds()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("GET /n/1 HTTP/1.1\r\nConnection: close\r\n\r\nGET /n/2 HTTP/1.1\r\n\r\n");
        HttpResult response = await client.ReadResponseAsync();
        Assert.Equal("close", response.Header("Connection"));
        Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        Assert.Equal(1, server.Handler.Calls); // the pipelined request after the close is not served
    }

    [Fact]
    public async Task FiftyPipelinedRequestsInOneSendAreAnsweredInOrderInFewSends()
    {
        await using TestServer server = new();
        StringBuilder requests = new();
        for (int i = 0; i < 50; i++)
        {
            requests.Append("GET /n/").Append(i).Append(" HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        using (RawClient client = await server.ConnectAsync())
        {
            await client.SendAsync(requests.ToString());
            for (int i = 0; i < 50; i++)
            {
                HttpResult response = await client.ReadResponseAsync();
                Assert.Equal(200, response.Status);
                Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), response.BodyText);
            }
        }
        await TestServer.WaitUntilAsync(() => server.Server.ConnectionCount == 0, what: "connection closed");
        // 50 answers, but sent when the input ran dry: one send per receive (the head arrives in one or a few reads).
        Assert.InRange(server.Server.SendsByClosedConnections, 1, 5);
    }

    [Fact]
    public async Task PipelinedBodiesOfBothKindsAreSeparatedCorrectly()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        string batch =
            "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nfirst" +
            "POST /echo?x=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3;ext=1\r\nond\r\n0\r\nTrailer: t\r\n\r\n" +
            "GET /n/third HTTP/1.1\r\n\r\n" +
            "\r\n" + // a stray blank line between requests is ignored
            "PUT /echo HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        await client.SendAsync(batch);
        HttpResult r1 = await client.ReadResponseAsync();
        HttpResult r2 = await client.ReadResponseAsync();
        HttpResult r3 = await client.ReadResponseAsync();
        HttpResult r4 = await client.ReadResponseAsync();
        Assert.Equal("first", r1.BodyText);
        Assert.Equal("POST", r1.Header("X-Method"));
        Assert.Equal("second", r2.BodyText);
        Assert.Equal("x=1", r2.Header("X-Query"));
        Assert.Equal("third", r3.BodyText);
        Assert.Equal("PUT", r4.Header("X-Method"));
        Assert.Equal("0", r4.Header("Content-Length"));
    }

    [Fact]
    public async Task LargeBodiesArriveWholeBothWays()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        byte[] payload = new byte[300_000];
        new Random(42).NextBytes(payload);

        await client.SendAsync("POST /echo HTTP/1.1\r\nContent-Length: " + payload.Length + "\r\n\r\n");
        await client.SendAsync(payload);
        HttpResult echoed = await client.ReadResponseAsync();
        Assert.Equal(payload, echoed.Body);

        // Same body chunked in uneven pieces, sent in several writes.
        StringBuilder chunked = new("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        await client.SendAsync(chunked.ToString());
        int offset = 0;
        int size = 1;
        while (offset < payload.Length)
        {
            int n = Math.Min(size, payload.Length - offset);
            byte[] frame = [.. Encoding.ASCII.GetBytes(n.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + "\r\n"), .. payload.AsSpan(offset, n), .. "\r\n"u8];
            await client.SendAsync(frame);
            offset += n;
            size = size * 3 % 70_000 + 1;
        }
        await client.SendAsync("0\r\n\r\n");
        HttpResult dechunked = await client.ReadResponseAsync();
        Assert.Equal(payload, dechunked.Body);
    }

    [Fact]
    public async Task ExpectContinueGets100BeforeTheBodyIsSent()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        Assert.Equal("HTTP/1.1 100 Continue", await client.ReadLineAsync());
        Assert.Equal("", await client.ReadLineAsync());
        await client.SendAsync("hello");
        HttpResult response = await client.ReadResponseAsync();
        Assert.Equal(200, response.Status);
        Assert.Equal("hello", response.BodyText);

        // Chunked with expectation too.
        await client.SendAsync("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
        Assert.Equal("HTTP/1.1 100 Continue", await client.ReadLineAsync());
        Assert.Equal("", await client.ReadLineAsync());
        await client.SendAsync("2\r\nok\r\n0\r\n\r\n");
        Assert.Equal("ok", (await client.ReadResponseAsync()).BodyText);
    }

    [Fact]
    public async Task ExpectContinueWithAnOversizedBodyGets413Without100()
    {
        await using TestServer server = new(o => new() { Port = 0, MaxBodyBytes = 1000, Log = o.Log });
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n");
        HttpResult response = await client.ReadResponseAsync();
        Assert.Equal(413, response.Status);
        Assert.Equal("close", response.Header("Connection"));
        Assert.Contains("too large", response.BodyText, StringComparison.Ordinal);
        Assert.Equal(0, server.Handler.Calls);
    }

    [Fact]
    public async Task HeadGetsContentLengthButNoBody()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("HEAD /n/12345 HTTP/1.1\r\n\r\nGET /n/after HTTP/1.1\r\n\r\n");
        HttpResult head = await client.ReadResponseAsync(headRequest: true);
        Assert.Equal(200, head.Status);
        Assert.Equal("5", head.Header("Content-Length"));
        // If the HEAD answer carried a body, this would read it as the next status line.
        HttpResult next = await client.ReadResponseAsync();
        Assert.Equal("after", next.BodyText);
    }

    [Fact]
    public async Task NoContentHasNoContentLength()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("GET /nocontent HTTP/1.1\r\n\r\nGET /n/x HTTP/1.1\r\n\r\n");
        HttpResult response = await client.ReadResponseAsync();
        Assert.Equal(204, response.Status);
        Assert.Null(response.Header("Content-Length"));
        Assert.Equal("x", (await client.ReadResponseAsync()).BodyText);
    }

    [Fact]
    public async Task UnknownMethodsReachTheHandlerAsOther()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("BREW /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\ntea");
        HttpResult response = await client.ReadResponseAsync();
        Assert.Equal("BREW", response.Header("X-Method"));
        Assert.Equal("tea", response.BodyText);
        Assert.Contains("Other /echo", server.Handler.Seen);
    }

    [Fact]
    public async Task HeaderLookupIsCaseInsensitive()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync("GET /header?name=last-event-id HTTP/1.1\r\nLAST-EVENT-ID:   42  \r\n\r\n");
        Assert.Equal("42", (await client.ReadResponseAsync()).BodyText);
    }

    [Theory]
    [InlineData("/throw")]
    [InlineData("/throw-async")]
    [InlineData("/none")]
    public async Task HandlerFailureIs500AndClose(string path)
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        await client.SendAsync($"GET {path} HTTP/1.1\r\n\r\nGET /n/never HTTP/1.1\r\n\r\n");
        HttpResult response = await client.ReadResponseAsync();
        Assert.Equal(500, response.Status);
        Assert.Equal("close", response.Header("Connection"));
        Assert.True(await client.IsClosedWithinAsync(TimeSpan.FromSeconds(3)));
        Assert.DoesNotContain("GET /n/never", server.Handler.Seen);
        Assert.Contains(server.Logs, l => path == "/none" ? l.Contains("without an answer", StringComparison.Ordinal) : l.Contains("boom", StringComparison.Ordinal));
    }

    [Fact]
    public async Task MixedPipelineSplitAtRandomPointsIsParsedExactly()
    {
        await using TestServer server = new();
        using RawClient client = await server.ConnectAsync();
        Random random = new(1234);
        List<string> expected = [];
        List<byte> wire = [];
        for (int i = 0; i < 200; i++)
        {
            string body = new((char)('a' + (i % 26)), random.Next(0, 6000));
            string padding = new('p', random.Next(0, 5000)); // heads larger than one 4 KiB buffer now and then
            string head = $"POST /echo?i={i} HTTP/1.1\r\nHost: x\r\nX-Pad: {padding}\r\n";
            if (i % 3 == 0)
            {
                wire.AddRange(Encoding.ASCII.GetBytes(head + "Transfer-Encoding: chunked\r\n\r\n"));
                int at = 0;
                while (at < body.Length)
                {
                    int n = Math.Min(random.Next(1, 2000), body.Length - at);
                    wire.AddRange(Encoding.ASCII.GetBytes(n.ToString("X", System.Globalization.CultureInfo.InvariantCulture) + ";x=y\r\n" + body.Substring(at, n) + "\r\n"));
                    at += n;
                }
                wire.AddRange("0\r\nT: 1\r\n\r\n"u8.ToArray());
            }
            else
            {
                wire.AddRange(Encoding.ASCII.GetBytes(head + "Content-Length: " + body.Length + "\r\n\r\n" + body));
            }
            expected.Add(body);
        }

        Task reader = Task.Run(async () =>
        {
            for (int i = 0; i < expected.Count; i++)
            {
                HttpResult response = await client.ReadResponseAsync();
                Assert.Equal(200, response.Status);
                Assert.Equal($"i={i}", response.Header("X-Query"));
                Assert.Equal(expected[i], response.BodyText);
            }
        });
        byte[] bytes = [.. wire];
        int offset = 0;
        while (offset < bytes.Length)
        {
            int n = Math.Min(random.Next(1, 3000), bytes.Length - offset);
            await client.SendAsync(bytes[offset..(offset + n)]);
            offset += n;
            if (random.Next(8) == 0)
            {
                await Task.Delay(1);
            }
        }
        await reader.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
