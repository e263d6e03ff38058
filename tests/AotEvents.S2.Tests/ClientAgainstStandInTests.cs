using AotEvents.S2.Transport;
using S2StandIn;

namespace AotEvents.S2.Tests;

/// <summary>The client against the stand-in: the spec's operations and error cases end to end.</summary>
public sealed class ClientAgainstStandInTests : IAsyncLifetime
{
    private S2StandIn.S2StandIn _standIn = null!;
    private S2Client _client = null!;

    public async Task InitializeAsync()
    {
        _standIn = await TestSupport.StartStandInAsync();
        _client = TestSupport.Client(_standIn);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _standIn.DisposeAsync();
    }

    [Fact]
    public async Task Create_stream_creates_once_then_reports_existing()
    {
        string stream = TestSupport.NewStream();

        Assert.True(await _client.CreateStreamAsync(stream));
        Assert.False(await _client.CreateStreamAsync(stream));

        Assert.True(_standIn.StreamExists(TestSupport.Basin, stream));
        Assert.Equal(new S2StreamPosition(0, 0), await _client.CheckTailAsync(stream));
    }

    [Fact]
    public async Task Appended_envelopes_read_back_byte_for_byte_with_their_positions()
    {
        string stream = TestSupport.NewStream();
        await _client.CreateStreamAsync(stream);
        string[] texts =
        [
            """{"capture_session_id":"9b1c","seq":1,"event":{"ts":1,"type":"console.log","category":"console","data":{"message":"say \"hi\"\n\ttab"}}}""",
            """{"capture_session_id":"9b1c","seq":2,"event":{"type":"page.x","url":"https://example.com/?a=1&b=<2>","data":"héllo ✓ 🚀 \u0001"}}""",
            "{}",
        ];

        S2AppendAck ack = await _client.AppendAsync(stream, TestSupport.Bodies(texts), matchSeqNum: 0);
        S2ReadBatch read = await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(0), count: 10);

        Assert.Equal(0, ack.Start.SeqNum);
        Assert.Equal(3, ack.End.SeqNum);
        Assert.Equal(3, ack.Tail.SeqNum);
        Assert.Equal(3, read.Records.Count);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(i, read.Records[i].SeqNum);
            Assert.Equal(texts[i], TestSupport.Text(read.Records[i].Body));
        }

        Assert.Equal(ack.Start.Timestamp, read.Records[0].Timestamp);
        Assert.Equal(ack.End.Timestamp, read.Records[2].Timestamp);
        Assert.Equal(texts, _standIn.Bodies(TestSupport.Basin, stream));
        Assert.Equal(new S2StreamPosition(3, ack.End.Timestamp), await _client.CheckTailAsync(stream));
    }

    [Fact]
    public async Task Match_seq_num_guards_against_a_second_copy()
    {
        string stream = TestSupport.NewStream();
        await _client.CreateStreamAsync(stream);
        await _client.AppendAsync(stream, TestSupport.Bodies("a", "b"), matchSeqNum: 0);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => _client.AppendAsync(stream, TestSupport.Bodies("a", "b"), matchSeqNum: 0));

        Assert.Equal(412, e.StatusCode);
        Assert.True(e.IsSeqNumMismatch);
        Assert.Equal(2, e.ExpectedSeqNum);
        Assert.Equal("seq_num_mismatch", e.Code);
        Assert.False(e.IsRetryable);
        Assert.Equal(["a", "b"], _standIn.Bodies(TestSupport.Basin, stream));

        S2AppendAck next = await _client.AppendAsync(stream, TestSupport.Bodies("c"), matchSeqNum: e.ExpectedSeqNum);
        Assert.Equal(2, next.Start.SeqNum);
    }

    [Fact]
    public async Task Append_without_match_seq_num_always_lands()
    {
        string stream = TestSupport.NewStream();
        await _client.CreateStreamAsync(stream);
        await _client.AppendAsync(stream, TestSupport.Bodies("a"), matchSeqNum: null);
        S2AppendAck ack = await _client.AppendAsync(stream, TestSupport.Bodies("b"), matchSeqNum: null);
        Assert.Equal(1, ack.Start.SeqNum);
    }

    [Fact]
    public async Task Reading_past_the_tail_is_416_with_the_tail_and_clamp_does_not_wait()
    {
        string stream = TestSupport.NewStream();
        await _client.CreateStreamAsync(stream);
        S2AppendAck ack = await _client.AppendAsync(stream, TestSupport.Bodies("a", "b"), 0);

        S2Exception beyond = await Assert.ThrowsAsync<S2Exception>(() => _client.ReadAsync(stream, S2ReadStart.AtSeqNum(5)));
        Assert.True(beyond.IsRangeNotSatisfiable);
        Assert.False(beyond.IsRetryable);
        Assert.Equal(new S2StreamPosition(2, ack.End.Timestamp), beyond.Tail);

        // At the tail a unary read has nothing to wait for: 416 too, clamped or not (as S2 does).
        S2Exception atTail = await Assert.ThrowsAsync<S2Exception>(() => _client.ReadAsync(stream, S2ReadStart.AtSeqNum(2)));
        Assert.Equal(2, atTail.Tail!.Value.SeqNum);
        S2Exception clamped = await Assert.ThrowsAsync<S2Exception>(() => _client.ReadAsync(stream, S2ReadStart.AtSeqNum(99), clamp: true));
        Assert.Equal(2, clamped.Tail!.Value.SeqNum);

        S2Exception empty = await Assert.ThrowsAsync<S2Exception>(async () =>
        {
            string fresh = TestSupport.NewStream();
            await _client.CreateStreamAsync(fresh);
            await _client.ReadAsync(fresh, S2ReadStart.AtSeqNum(0));
        });
        Assert.Equal(new S2StreamPosition(0, 0), empty.Tail);
    }

    [Fact]
    public async Task Read_limits_count_bytes_until_and_starts_by_timestamp_or_tail_offset()
    {
        string stream = TestSupport.NewStream();
        await _client.CreateStreamAsync(stream);
        long t0 = 1_700_000_000_000;
        long clock = t0;
        _standIn.Clock = () => clock;
        try
        {
            for (int i = 0; i < 5; i++)
            {
                clock = t0 + (i * 1000);
                await _client.AppendAsync(stream, TestSupport.Bodies($"r{i}"), i);
            }
        }
        finally
        {
            _standIn.Clock = static () => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        }

        S2ReadBatch byCount = await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(1), count: 2);
        Assert.Equal([1L, 2L], byCount.Records.Select(r => r.SeqNum));

        S2ReadBatch byBytes = await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(0), bytes: (2 * S2Limits.MeteredBytes(2)) + 1);
        Assert.Equal(2, byBytes.Records.Count);

        S2ReadBatch byUntil = await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(0), until: t0 + 2000);
        Assert.Equal(["r0", "r1"], byUntil.Records.Select(r => TestSupport.Text(r.Body)));

        S2ReadBatch byTimestamp = await _client.ReadAsync(stream, S2ReadStart.AtTimestamp(t0 + 2500));
        Assert.Equal(3, byTimestamp.Records[0].SeqNum);
        Assert.Equal(t0 + 3000, byTimestamp.Records[0].Timestamp);

        S2ReadBatch byTailOffset = await _client.ReadAsync(stream, S2ReadStart.AtTailOffset(2));
        Assert.Equal([3L, 4L], byTailOffset.Records.Select(r => r.SeqNum));

        S2ReadBatch tooSmall = await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(0), bytes: 4);
        Assert.Empty(tooSmall.Records);

        S2Exception afterLast = await Assert.ThrowsAsync<S2Exception>(() => _client.ReadAsync(stream, S2ReadStart.AtTimestamp(t0 + 9999)));
        Assert.True(afterLast.IsRangeNotSatisfiable);
    }

    [Fact]
    public async Task A_full_batch_of_1000_records_round_trips_and_a_read_caps_at_1000()
    {
        string stream = TestSupport.NewStream();
        await _client.CreateStreamAsync(stream);
        string[] texts = [.. Enumerable.Range(0, 1000).Select(i => $$"""{"seq":{{i}},"pad":"{{new string('x', 900)}}"}""")];

        S2AppendAck ack = await _client.AppendAsync(stream, TestSupport.Bodies(texts), 0);
        await _client.AppendAsync(stream, TestSupport.Bodies("extra"), 1000);
        S2ReadBatch read = await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(0));

        Assert.Equal(1000, ack.Count);
        Assert.Equal(1000, read.Records.Count);
        Assert.Equal(texts[999], TestSupport.Text(read.Records[999].Body));
    }

    [Fact]
    public async Task Too_many_metered_bytes_is_a_non_retryable_422()
    {
        string stream = TestSupport.NewStream();
        await _client.CreateStreamAsync(stream);
        var big = new ReadOnlyMemory<byte>[] { new byte[600_000].Select(_ => (byte)'a').ToArray(), new byte[600_000].Select(_ => (byte)'b').ToArray() };

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => _client.AppendAsync(stream, big, 0));

        Assert.Equal(422, e.StatusCode);
        Assert.Equal("invalid", e.Code);
        Assert.False(e.IsRetryable);
    }

    [Fact]
    public async Task Missing_stream_is_distinguishable_so_the_shipper_can_create_it()
    {
        string stream = TestSupport.NewStream();

        S2Exception append = await Assert.ThrowsAsync<S2Exception>(() => _client.AppendAsync(stream, TestSupport.Bodies("a"), 0));
        S2Exception read = await Assert.ThrowsAsync<S2Exception>(() => _client.ReadAsync(stream, S2ReadStart.AtSeqNum(0)));
        S2Exception tail = await Assert.ThrowsAsync<S2Exception>(() => _client.CheckTailAsync(stream));

        Assert.All([append, read, tail], e =>
        {
            Assert.Equal(404, e.StatusCode);
            Assert.True(e.IsStreamNotFound);
            Assert.False(e.IsRetryable);
        });
        Assert.False(_standIn.StreamExists(TestSupport.Basin, stream));

        Assert.True(await _client.CreateStreamAsync(stream));
        Assert.Equal(0, (await _client.AppendAsync(stream, TestSupport.Bodies("a"), 0)).Start.SeqNum);
    }

    [Fact]
    public async Task Every_request_carries_the_bearer_token_and_the_basin_header()
    {
        string stream = TestSupport.NewStream();
        _standIn.ClearRequests();

        await _client.CreateStreamAsync(stream);
        await _client.AppendAsync(stream, TestSupport.Bodies("a"), 0);
        await _client.ReadAsync(stream, S2ReadStart.AtSeqNum(0));
        await _client.CheckTailAsync(stream);

        IReadOnlyList<S2StandInRequest> requests = [.. _standIn.Requests.Where(r => r.Stream == stream || r.Op == S2Op.CreateStream)];
        Assert.Equal([S2Op.CreateStream, S2Op.Append, S2Op.Read, S2Op.CheckTail], requests.Select(r => r.Op));
        Assert.All(requests, r =>
        {
            Assert.Equal("Bearer " + TestSupport.Token, r.Authorization);
            Assert.Equal(TestSupport.Basin, r.BasinHeader);
            Assert.Equal($"127.0.0.1:{_standIn.Port}", r.Host);
            Assert.InRange(r.Status, 200, 201);
        });
        Assert.Equal("raw", requests[1].Format);
        Assert.Equal("raw", requests[2].Format);
    }

    [Fact]
    public async Task A_wrong_token_is_a_non_retryable_auth_failure()
    {
        using S2Client intruder = TestSupport.Client(_standIn, token: "not-the-token");

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => intruder.CheckTailAsync(TestSupport.NewStream()));

        Assert.Equal(403, e.StatusCode);
        Assert.Equal("permission_denied", e.Code);
        Assert.True(e.IsAuthFailure);
        Assert.False(e.IsRetryable);
    }

    [Fact]
    public async Task Host_style_addressing_carries_the_basin_in_the_host_name()
    {
        // {basin}.b.s2.test resolves nowhere: connect every such name to the stand-in instead.
        int port = _standIn.Port;
        var pool = new S2HttpPoolOptions
        {
            ConnectCallback = async (host, _, token) =>
            {
                Assert.Equal("host-style-basin.b.s2.test", host);
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                await socket.ConnectAsync(System.Net.IPAddress.Loopback, port, token);
                return socket;
            },
        };
        using var hostStyle = new S2Client(
            new S2Options { Basin = "host-style-basin", AccessToken = TestSupport.Token, Endpoint = $"http://{{basin}}.b.s2.test:{port}", SendBasinHeader = false },
            (endpoint, _) => new S2HttpConnectionPool(S2HttpOrigin.FromUrl(endpoint.BaseUrl), pool));
        string stream = TestSupport.NewStream();
        _standIn.ClearRequests();

        await hostStyle.CreateStreamAsync(stream);
        await hostStyle.AppendAsync(stream, TestSupport.Bodies("via host"), 0);

        Assert.Equal(["via host"], _standIn.Bodies("host-style-basin", stream));
        Assert.False(_standIn.StreamExists(TestSupport.Basin, stream));
        S2StandInRequest append = _standIn.Requests.Single(r => r.Op == S2Op.Append);
        Assert.Null(append.BasinHeader);
        Assert.Equal($"host-style-basin.b.s2.test:{port}", append.Host);
        Assert.Equal("host-style-basin", append.Basin);
    }

    [Fact]
    public async Task Concurrent_appends_to_many_streams_keep_each_stream_in_order()
    {
        string[] streams = [.. Enumerable.Range(0, 4).Select(_ => TestSupport.NewStream())];
        await Task.WhenAll(streams.Select(async stream =>
        {
            await _client.CreateStreamAsync(stream);
            for (int i = 0; i < 25; i++)
            {
                await _client.AppendAsync(stream, TestSupport.Bodies($"{stream}:{i}"), i);
            }
        }));

        foreach (string stream in streams)
        {
            Assert.Equal(Enumerable.Range(0, 25).Select(i => $"{stream}:{i}"), _standIn.Bodies(TestSupport.Basin, stream));
        }
    }

    [Fact]
    public async Task Caller_cancellation_stays_an_operation_canceled_exception()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.CheckTailAsync(TestSupport.NewStream(), cts.Token));
    }
}
