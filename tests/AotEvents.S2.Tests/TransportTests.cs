using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using AotEvents.S2.Transport;

namespace AotEvents.S2.Tests;

/// <summary>
/// The client's own HTTP/1.1 transport against a scripted raw server: framing (Content-Length, chunked,
/// until close), keep-alive reuse and its limits, never re-sending an append, timeouts, garbage answers.
/// </summary>
public sealed class TransportTests : IAsyncDisposable
{
    private const string Ack = """{"start":{"seq_num":0,"timestamp":1},"end":{"seq_num":1,"timestamp":1},"tail":{"seq_num":1,"timestamp":1}}""";
    private const string Tail = """{"tail":{"seq_num":5,"timestamp":9}}""";

    private ScriptedHttpServer? _server;
    private S2HttpConnectionPool? _pool;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    private S2Client Start(Func<ScriptedRequest, ScriptedReply> script, TimeSpan? timeout = null, S2HttpPoolOptions? pool = null)
    {
        _server = new ScriptedHttpServer(script);
        var options = new S2Options
        {
            Basin = "transport-basin",
            AccessToken = "transport-token",
            Endpoint = _server.Endpoint,
            RequestTimeout = timeout ?? TimeSpan.FromSeconds(5),
        };
        return new S2Client(options, (endpoint, o) => _pool = new S2HttpConnectionPool(
            S2HttpOrigin.FromUrl(endpoint.BaseUrl),
            pool ?? new S2HttpPoolOptions { ConnectTimeout = o.ConnectTimeout }));
    }

    private static Task<S2AppendAck> AppendOne(S2Client client, string body = "x") => client.AppendAsync("s", TestSupport.Bodies(body), 0);

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        Assert.True(condition());
        await Task.Delay(30); // let the FIN reach the client's socket
    }

    [Fact]
    public async Task Requests_carry_the_spec_headers_and_an_exact_content_length()
    {
        using S2Client client = Start(r => r.RequestLine.StartsWith("POST", StringComparison.Ordinal) ? ScriptedReply.Json(200, Ack) : ScriptedReply.Json(200, Tail));

        await AppendOne(client, "héllo");
        await client.CheckTailAsync("my stream");

        ScriptedRequest[] requests = [.. _server!.Requests];
        Assert.Equal("POST /v1/streams/s/records HTTP/1.1", requests[0].RequestLine);
        Assert.Equal($"127.0.0.1:{_server.Port}", requests[0].Header("Host"));
        Assert.Equal("Bearer transport-token", requests[0].Header("Authorization"));
        Assert.Equal("transport-basin", requests[0].Header("s2-basin"));
        Assert.Equal("raw", requests[0].Header("s2-format"));
        Assert.Equal("application/json", requests[0].Header("Accept"));
        Assert.Equal("application/json", requests[0].Header("Content-Type"));
        Assert.Equal("""{"records":[{"body":"héllo"}],"match_seq_num":0}""", requests[0].Body);
        Assert.Equal(Encoding.UTF8.GetByteCount(requests[0].Body).ToString(System.Globalization.CultureInfo.InvariantCulture), requests[0].Header("Content-Length"));
        Assert.Null(requests[0].Header("Connection"));

        Assert.Equal("GET /v1/streams/my%20stream/records/tail HTTP/1.1", requests[1].RequestLine);
        Assert.Null(requests[1].Header("Content-Length"));
        Assert.Null(requests[1].Header("s2-format"));
    }

    [Fact]
    public async Task A_large_append_body_arrives_intact()
    {
        using S2Client client = Start(_ => ScriptedReply.Json(200, Ack));
        string big = new('a', 300_000);

        await AppendOne(client, big);

        Assert.Equal($$"""{"records":[{"body":"{{big}}"}],"match_seq_num":0}""", Assert.Single(_server!.Requests).Body);
    }

    [Fact]
    public async Task Chunked_answers_with_extensions_and_trailers_are_decoded()
    {
        string records = string.Join(',', Enumerable.Range(0, 400).Select(i => $$"""{"seq_num":{{i}},"timestamp":{{i}},"body":"record-{{i}}-{{new string('z', i % 50)}}"}"""));
        string batch = """{"records":[""" + records + """],"tail":{"seq_num":400,"timestamp":400}}""";
        using S2Client client = Start(_ => ScriptedReply.Chunked(200, batch, [1, 7, 4096, 20_000, 3], trailer: "x-trailer: t\r\n"));

        S2ReadBatch first = await client.ReadAsync("s", S2ReadStart.AtSeqNum(0));
        S2ReadBatch second = await client.ReadAsync("s", S2ReadStart.AtSeqNum(0));

        Assert.Equal(400, first.Records.Count);
        Assert.Equal("record-399-" + new string('z', 49), TestSupport.Text(first.Records[399].Body));
        Assert.Equal(new S2StreamPosition(400, 400), second.Tail);
        Assert.Equal(1, _server!.Connections); // the chunked body was read to its end: connection reused
    }

    [Fact]
    public async Task A_chunked_error_body_is_parsed()
    {
        using S2Client client = Start(_ => ScriptedReply.Chunked(503, """{"code":"unavailable","message":"try later"}""", [5]));

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));

        Assert.Equal(503, e.StatusCode);
        Assert.Equal("unavailable", e.Code);
        Assert.Contains("try later", e.Message, StringComparison.Ordinal);
        Assert.True(e.IsRetryable);
    }

    [Fact]
    public async Task Retry_after_ms_and_an_error_answer_keep_the_connection()
    {
        using S2Client client = Start(r => r.Index == 0
            ? ScriptedReply.Json(429, """{"code":"rate_limited","message":"slow down"}""", extraHeaders: "retry-after-ms: 120\r\n")
            : ScriptedReply.Json(200, Tail));

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));
        S2StreamPosition tail = await client.CheckTailAsync("s");

        Assert.Equal(TimeSpan.FromMilliseconds(120), e.RetryAfter);
        Assert.Equal(5, tail.SeqNum);
        Assert.Equal(1, _server!.Connections);
    }

    [Fact]
    public async Task Keep_alive_reuses_one_connection_for_sequential_requests()
    {
        using S2Client client = Start(r => r.RequestLine.StartsWith("POST", StringComparison.Ordinal) ? ScriptedReply.Json(200, Ack) : ScriptedReply.Json(200, Tail));

        for (int i = 0; i < 5; i++)
        {
            await client.CheckTailAsync("s");
            await AppendOne(client);
        }

        Assert.Equal(1, _server!.Connections);
        Assert.Equal(10, _server.Requests.Count);
        Assert.Equal(1, _pool!.IdleCount);
    }

    [Fact]
    public async Task Concurrent_requests_open_more_connections_but_the_pool_keeps_at_most_four()
    {
        using S2Client client = Start(_ => new ScriptedReply([
            Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {Tail.Length}\r\n\r\n"),
            Encoding.ASCII.GetBytes(Tail)]));

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => client.CheckTailAsync("s")));

        Assert.InRange(_server!.Connections, 2, 8);
        Assert.InRange(_pool!.IdleCount, 1, 4);
    }

    [Fact]
    public async Task Connection_close_from_the_server_is_honoured()
    {
        using S2Client client = Start(r => ScriptedReply.Json(200, Tail, extraHeaders: "Connection: close\r\n"));

        await client.CheckTailAsync("s");
        await client.CheckTailAsync("s");

        Assert.Equal(2, _server!.Connections);
        Assert.Equal(0, _pool!.IdleCount);
    }

    [Fact]
    public async Task An_idle_connection_closed_by_the_server_is_replaced_before_the_append_is_sent()
    {
        using S2Client client = Start(r => r.RequestLine.StartsWith("POST", StringComparison.Ordinal)
            ? ScriptedReply.Json(200, Ack)
            : ScriptedReply.Json(200, Tail, AfterReply.Close)); // keep-alive answer, then the server closes anyway
        await client.CheckTailAsync("s");
        await WaitUntil(() => _server!.ClosedByServer == 1);

        S2AppendAck ack = await AppendOne(client);

        Assert.Equal(1, ack.End.SeqNum);
        Assert.Equal(2, _server!.Connections);
        Assert.Single(_server.Requests, r => r.RequestLine.StartsWith("POST", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_append_lost_on_a_reused_connection_is_a_network_error_and_never_resent()
    {
        // The second request on each connection is read, then the connection dies without an answer:
        // the append may have landed, so the client must not send it again by itself.
        using S2Client client = Start(r => r.Index == 0 ? ScriptedReply.Json(200, Tail) : ScriptedReply.Nothing(AfterReply.Close));
        await client.CheckTailAsync("s");

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => AppendOne(client));

        Assert.Equal(S2FailureKind.Network, e.Kind);
        Assert.Equal(0, e.StatusCode);
        Assert.True(e.IsRetryable);
        Assert.Single(_server!.Requests, r => r.RequestLine.StartsWith("POST", StringComparison.Ordinal));
        Assert.Equal(1, _server.Connections);
    }

    [Fact]
    public async Task A_read_lost_on_a_reused_connection_is_repeated_once_on_a_new_one()
    {
        using S2Client client = Start(r => r.Index == 0 ? ScriptedReply.Json(200, Tail) : ScriptedReply.Nothing(AfterReply.Reset));
        await client.CheckTailAsync("s");

        S2StreamPosition tail = await client.CheckTailAsync("s");

        Assert.Equal(5, tail.SeqNum);
        Assert.Equal(2, _server!.Connections);
        Assert.Equal(3, _server.Requests.Count);
    }

    [Fact]
    public async Task A_read_lost_on_a_new_connection_is_not_repeated()
    {
        using S2Client client = Start(_ => ScriptedReply.Nothing(AfterReply.Close));

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));

        Assert.Equal(S2FailureKind.Network, e.Kind);
        Assert.Single(_server!.Requests);
    }

    [Fact]
    public async Task A_body_cut_short_is_a_network_error_and_the_connection_is_dropped()
    {
        using S2Client client = Start(r => r.Connection == 1
            ? ScriptedReply.Raw("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"tail\":", AfterReply.Close)
            : ScriptedReply.Json(200, Tail));

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));
        Assert.Equal(S2FailureKind.Network, e.Kind);
        Assert.Equal(5, (await client.CheckTailAsync("s")).SeqNum);
        Assert.Equal(2, _server!.Connections);
    }

    [Fact]
    public async Task A_body_delimited_by_close_is_read_and_the_connection_not_reused()
    {
        using S2Client client = Start(_ => ScriptedReply.Raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + Tail, AfterReply.Close));

        Assert.Equal(5, (await client.CheckTailAsync("s")).SeqNum);
        Assert.Equal(5, (await client.CheckTailAsync("s")).SeqNum);
        Assert.Equal(2, _server!.Connections);
    }

    [Fact]
    public async Task Interim_100_continue_and_http_1_0_answers_are_understood()
    {
        using S2Client client = Start(r => r.Index == 0
            ? ScriptedReply.Raw($"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: {Tail.Length}\r\n\r\n{Tail}")
            : ScriptedReply.Raw($"HTTP/1.0 200 OK\r\nContent-Length: {Tail.Length}\r\n\r\n{Tail}"));

        Assert.Equal(5, (await client.CheckTailAsync("s")).SeqNum);
        Assert.Equal(5, (await client.CheckTailAsync("s")).SeqNum);
        Assert.Equal(0, _pool!.IdleCount); // an HTTP/1.0 answer is not kept alive
    }

    [Theory]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("\u0016\u0003\u0001\u0000\u00a5binary")]
    [InlineData("HTTP/1.1 2x0 OK\r\n\r\n")]
    [InlineData("HTTP/2 200\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\n folded: header\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n")]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\n\r\n")]
    public async Task Garbage_answers_are_retryable_invalid_responses(string answer)
    {
        using S2Client client = Start(_ => ScriptedReply.Raw(answer, AfterReply.Hang));

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));

        Assert.Equal(S2FailureKind.InvalidResponse, e.Kind);
        Assert.True(e.IsRetryable);
        Assert.IsType<S2HttpProtocolException>(e.InnerException);
        Assert.Equal(0, _pool!.IdleCount);
    }

    [Fact]
    public async Task An_oversized_head_is_an_invalid_response()
    {
        string huge = "HTTP/1.1 200 OK\r\n" + string.Concat(Enumerable.Range(0, 400).Select(i => $"x-filler-{i}: {new string('f', 40)}\r\n")) + "\r\n";
        using S2Client client = Start(_ => ScriptedReply.Raw(huge, AfterReply.Hang));

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));

        Assert.Equal(S2FailureKind.InvalidResponse, e.Kind);
    }

    [Fact]
    public async Task An_oversized_body_is_an_invalid_response()
    {
        using S2Client client = Start(
            _ => ScriptedReply.Raw("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", AfterReply.Hang),
            pool: new S2HttpPoolOptions { MaxResponseBodyBytes = 64 * 1024 });

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));

        Assert.Equal(S2FailureKind.InvalidResponse, e.Kind);
        Assert.Equal(200, e.StatusCode);
    }

    [Fact]
    public async Task No_answer_within_the_request_timeout_is_a_retryable_timeout()
    {
        using S2Client client = Start(_ => ScriptedReply.Nothing(AfterReply.Hang), timeout: TimeSpan.FromMilliseconds(300));

        var clock = Stopwatch.StartNew();
        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => AppendOne(client));

        Assert.Equal(S2FailureKind.Timeout, e.Kind);
        Assert.True(e.IsRetryable);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3));
        Assert.Equal(0, _pool!.IdleCount);
    }

    [Fact]
    public async Task A_body_that_stalls_times_out_too()
    {
        using S2Client client = Start(_ => ScriptedReply.Raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"ta", AfterReply.Hang), timeout: TimeSpan.FromMilliseconds(300));

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));

        Assert.Equal(S2FailureKind.Timeout, e.Kind);
    }

    [Fact]
    public async Task A_connect_that_does_not_complete_is_a_retryable_network_error_after_the_connect_timeout()
    {
        var pool = new S2HttpPoolOptions
        {
            ConnectTimeout = TimeSpan.FromMilliseconds(200),
            ConnectCallback = async (_, _, token) =>
            {
                await Task.Delay(Timeout.Infinite, token);
                throw new InvalidOperationException("unreachable");
            },
        };
        using S2Client client = Start(_ => ScriptedReply.Json(200, Tail), timeout: TimeSpan.FromSeconds(5), pool: pool);

        var clock = Stopwatch.StartNew();
        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));

        Assert.Equal(S2FailureKind.Network, e.Kind);
        Assert.True(e.IsRetryable);
        Assert.Contains("timed out", e.Message, StringComparison.Ordinal);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task Caller_cancellation_stays_an_operation_canceled_exception()
    {
        using S2Client client = Start(_ => ScriptedReply.Nothing(AfterReply.Hang));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.CheckTailAsync("s", cancel.Token));
    }

    [Fact]
    public async Task Connection_refused_is_a_network_error_with_the_socket_error()
    {
        using var client = new S2Client(new S2Options { Basin = "b", AccessToken = "t", Endpoint = $"http://127.0.0.1:{TestSupport.ClosedPort()}" });

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));

        Assert.Equal(S2FailureKind.Network, e.Kind);
        Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(e.InnerException).SocketErrorCode);
    }

    [Fact]
    public async Task Disposing_the_client_closes_its_idle_connections()
    {
        S2Client client = Start(_ => ScriptedReply.Json(200, Tail));
        await client.CheckTailAsync("s");

        client.Dispose();

        await WaitUntil(() => _server!.ClosedByClient == 1);
    }

    [Fact]
    public async Task Without_reuse_each_request_asks_for_connection_close()
    {
        using S2Client client = Start(_ => ScriptedReply.Json(200, Tail), pool: new S2HttpPoolOptions { ReuseConnections = false });

        await client.CheckTailAsync("s");
        await client.CheckTailAsync("s");

        Assert.All(_server!.Requests, r => Assert.Equal("close", r.Header("Connection")));
        Assert.Equal(2, _server.Connections);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080/v1", false, "127.0.0.1", 8080, "127.0.0.1:8080")]
    [InlineData("https://my-basin.b.s2.dev/v1", true, "my-basin.b.s2.dev", 443, "my-basin.b.s2.dev")]
    [InlineData("http://[::1]:9000/v1", false, "::1", 9000, "[::1]:9000")]
    [InlineData("https://Example.COM:8443/x", true, "example.com", 8443, "example.com:8443")]
    [InlineData("http://bücher.example/v1", false, "xn--bcher-kva.example", 80, "xn--bcher-kva.example")]
    public void Origins_name_host_port_and_host_header(string url, bool tls, string host, int port, string hostHeader)
        => Assert.Equal(new S2HttpOrigin(tls, host, port, hostHeader), S2HttpOrigin.FromUrl(url));

    [Fact]
    public void Header_injection_through_the_token_or_basin_is_refused()
    {
        Assert.Throws<ArgumentException>(() => new S2Client(new S2Options { Basin = "b", AccessToken = "t\r\nX-Evil: 1", Endpoint = "http://127.0.0.1:1" }));
        Assert.Throws<ArgumentException>(() => new S2Client(new S2Options { Basin = "b\nX: y", AccessToken = "t", Endpoint = "http://127.0.0.1:1" }));
    }
}
