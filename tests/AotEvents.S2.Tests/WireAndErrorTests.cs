using System.Net;
using AotEvents.S2.Transport;

namespace AotEvents.S2.Tests;

/// <summary>The client's wire format and error mapping, checked against canned answers.</summary>
public class WireAndErrorTests
{
    private static S2Client Client(RecordingTransport transport, string? endpoint = "http://s2.test:8080")
        => new(new S2Options { Basin = "wire-basin", AccessToken = "secret-token", Endpoint = endpoint }, (_, _) => transport);

    private static string[] Values(S2HttpRequest request, string name)
        => [.. request.Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value)];

    private const string Ack = """{"start":{"seq_num":5,"timestamp":100},"end":{"seq_num":7,"timestamp":101},"tail":{"seq_num":7,"timestamp":101}}""";

    [Fact]
    public async Task Append_sends_bearer_basin_header_raw_format_and_the_spec_body()
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.OK, Ack));
        using S2Client client = Client(transport);

        S2AppendAck ack = await client.AppendAsync("events", TestSupport.Bodies("""{"seq":1,"q":"a\"b"}""", "héllo <&> ✓"), matchSeqNum: 5);

        Assert.Equal(new S2StreamPosition(5, 100), ack.Start);
        Assert.Equal(new S2StreamPosition(7, 101), ack.End);
        Assert.Equal(2, ack.Count);
        (S2HttpRequest request, string? body) = Assert.Single(transport.Requests);
        Assert.Equal("POST", request.Method);
        Assert.Equal("http://s2.test:8080/v1/streams/events/records", request.Url);
        Assert.Equal(["Bearer secret-token"], Values(request, "Authorization"));
        Assert.Equal(["application/json"], Values(request, "Accept"));
        Assert.Equal("wire-basin", Assert.Single(Values(request, "s2-basin")));
        Assert.Equal("raw", Assert.Single(Values(request, "s2-format")));
        Assert.Equal("application/json", Assert.Single(Values(request, "Content-Type")));
        Assert.Equal("""{"records":[{"body":"{\"seq\":1,\"q\":\"a\\\"b\"}"},{"body":"héllo <&> ✓"}],"match_seq_num":5}""", body);
    }

    [Fact]
    public async Task Append_without_match_seq_num_omits_it_and_default_endpoint_sends_no_basin_header()
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.OK,
            """{"start":{"seq_num":0,"timestamp":1},"end":{"seq_num":1,"timestamp":1},"tail":{"seq_num":1,"timestamp":1}}"""));
        using S2Client client = Client(transport, endpoint: null);

        await client.AppendAsync("s", TestSupport.Bodies("x"), matchSeqNum: null);

        (S2HttpRequest request, string? body) = Assert.Single(transport.Requests);
        Assert.Equal("https://wire-basin.b.s2.dev/v1/streams/s/records", request.Url);
        Assert.Empty(Values(request, "s2-basin"));
        Assert.Equal("""{"records":[{"body":"x"}]}""", body);
    }

    [Fact]
    public async Task Create_stream_posts_the_name_and_treats_already_exists_as_success()
    {
        int calls = 0;
        var transport = new RecordingTransport(_ => ++calls == 1
            ? RecordingTransport.Respond(HttpStatusCode.Created, """{"name":"s","created_at":"2026-01-01T00:00:00Z"}""")
            : RecordingTransport.Respond(HttpStatusCode.Conflict, """{"code":"resource_already_exists","message":"exists"}"""));
        using S2Client client = Client(transport);

        Assert.True(await client.CreateStreamAsync("s"));
        Assert.False(await client.CreateStreamAsync("s"));
        Assert.Equal("http://s2.test:8080/v1/streams", transport.Requests[0].Request.Url);
        Assert.Equal("""{"stream":"s"}""", transport.Requests[0].Body);
    }

    [Fact]
    public async Task Conflict_other_than_already_exists_is_an_error()
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.Conflict, """{"code":"stream_deletion_pending","message":"being deleted"}"""));
        using S2Client client = Client(transport);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CreateStreamAsync("s"));
        Assert.Equal("stream_deletion_pending", e.Code);
        Assert.False(e.IsRetryable);
    }

    [Fact]
    public async Task Read_decodes_escaped_bodies_to_exact_utf8_bytes()
    {
        const string batch = """{"records":[{"seq_num":3,"timestamp":9,"body":"{\"a\":\"\\u00e9\\n\"}"},{"seq_num":4,"timestamp":10,"headers":[["k","v"]],"body":"plain"},{"seq_num":5,"timestamp":10}],"tail":{"seq_num":6,"timestamp":10}}""";
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.OK, batch));
        using S2Client client = Client(transport);

        S2ReadBatch read = await client.ReadAsync("s", S2ReadStart.AtSeqNum(3), count: 3);

        Assert.Equal(3, read.Records.Count);
        Assert.Equal("{\"a\":\"\\u00e9\\n\"}", TestSupport.Text(read.Records[0].Body));
        Assert.Equal("plain", TestSupport.Text(read.Records[1].Body));
        Assert.True(read.Records[2].Body.IsEmpty);
        Assert.Equal(new S2StreamPosition(6, 10), read.Tail);
        Assert.Equal("raw", Assert.Single(Values(transport.Requests[0].Request, "s2-format")));
    }

    [Fact]
    public async Task Error_info_is_parsed_into_status_code_and_message()
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.NotFound, """{"code":"stream_not_found","message":"stream `s` not found"}"""));
        using S2Client client = Client(transport);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync("s"));
        Assert.Equal(404, e.StatusCode);
        Assert.Equal("stream_not_found", e.Code);
        Assert.True(e.IsStreamNotFound);
        Assert.False(e.IsRetryable);
        Assert.Contains("stream `s` not found", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_non_json_error_page_keeps_the_status_and_text()
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.BadGateway, "<html>bad gateway</html>", "text/html"));
        using S2Client client = Client(transport);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync("s", TestSupport.Bodies("x"), 0));
        Assert.Equal(502, e.StatusCode);
        Assert.Null(e.Code);
        Assert.True(e.IsRetryable);
        Assert.Contains("bad gateway", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fencing_token_mismatch_is_parsed()
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.PreconditionFailed, """{"fencing_token_mismatch":"other"}"""));
        using S2Client client = Client(transport);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync("s", TestSupport.Bodies("x"), 0));
        Assert.Equal("fencing_token_mismatch", e.Code);
        Assert.Equal("other", e.ExpectedFencingToken);
        Assert.False(e.IsSeqNumMismatch);
    }

    [Fact]
    public async Task A_garbled_success_body_is_a_retryable_invalid_response()
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.OK, """{"start":{"seq_num":"""));
        using S2Client client = Client(transport);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync("s", TestSupport.Bodies("x"), 0));
        Assert.Equal(S2FailureKind.InvalidResponse, e.Kind);
        Assert.True(e.IsRetryable);
    }

    [Fact]
    public async Task An_ack_that_does_not_cover_the_batch_is_an_invalid_response()
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.OK, Ack)); // acks 2 records at 5
        using S2Client client = Client(transport);

        S2Exception count = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync("s", TestSupport.Bodies("only one"), 5));
        S2Exception position = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync("s", TestSupport.Bodies("a", "b"), 4));

        Assert.Equal(S2FailureKind.InvalidResponse, count.Kind);
        Assert.Equal(S2FailureKind.InvalidResponse, position.Kind);
        Assert.Equal(2, (await client.AppendAsync("s", TestSupport.Bodies("a", "b"), null)).Count);
    }

    [Fact]
    public async Task Invalid_arguments_are_refused_before_any_request()
    {
        var transport = new RecordingTransport(_ => throw new InvalidOperationException("no request expected"));
        using S2Client client = Client(transport);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.AppendAsync("s", [], 0));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.AppendAsync("s", new ReadOnlyMemory<byte>[1001], 0));
        await Assert.ThrowsAsync<ArgumentException>(() => client.AppendAsync("", TestSupport.Bodies("x"), 0));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.ReadAsync("s", S2ReadStart.AtSeqNum(-1)));
        Assert.Empty(transport.Requests);
    }

    [Theory]
    [InlineData(408, null, true)]
    [InlineData(429, "rate_limited", true)]
    [InlineData(500, "storage", true)]
    [InlineData(502, "hot_server", true)]
    [InlineData(503, "unavailable", true)]
    [InlineData(504, null, true)]
    [InlineData(409, "transaction_conflict", true)]
    [InlineData(400, "bad_json", false)]
    [InlineData(401, null, false)]
    [InlineData(403, "permission_denied", false)]
    [InlineData(404, "stream_not_found", false)]
    [InlineData(409, "resource_already_exists", false)]
    [InlineData(412, "seq_num_mismatch", false)]
    [InlineData(416, null, false)]
    [InlineData(422, "invalid", false)]
    public void Retryable_classification_follows_the_status_and_code(int status, string? code, bool retryable)
    {
        Assert.Equal(retryable, S2Exception.IsRetryableStatus(status, code));
        Assert.Equal(retryable, new S2Exception("x", S2FailureKind.Response, status, code).IsRetryable);
    }

    [Theory]
    [InlineData(S2FailureKind.Network)]
    [InlineData(S2FailureKind.Timeout)]
    [InlineData(S2FailureKind.InvalidResponse)]
    public void Failures_without_an_error_answer_are_retryable(S2FailureKind kind)
        => Assert.True(new S2Exception("x", kind).IsRetryable);

    [Theory]
    [InlineData("1500", null, 1500.0)]
    [InlineData("0", null, 0.0)]
    [InlineData(" 250 ", "9", 250.0)]
    [InlineData(null, "3", 3000.0)]
    [InlineData("soon", "2", 2000.0)]
    [InlineData("-5", null, null)]
    [InlineData(null, null, null)]
    public void Retry_after_prefers_retry_after_ms_then_retry_after_seconds(string? ms, string? seconds, double? expectedMs)
    {
        var headers = new List<KeyValuePair<string, string>>();
        if (ms is not null)
        {
            headers.Add(new("retry-after-ms", ms));
        }

        if (seconds is not null)
        {
            headers.Add(new("Retry-After", seconds));
        }

        TimeSpan? parsed = S2Client.ParseRetryAfter(headers);
        Assert.Equal(expectedMs, parsed?.TotalMilliseconds);
    }

    [Fact]
    public void Retry_after_as_http_date_becomes_the_remaining_wait()
    {
        string date = DateTimeOffset.UtcNow.AddSeconds(30).ToString("r", System.Globalization.CultureInfo.InvariantCulture);
        TimeSpan? parsed = S2Client.ParseRetryAfter([new("Retry-After", date)]);
        Assert.InRange(parsed!.Value.TotalSeconds, 25, 31);
    }

    [Fact]
    public void Metering_matches_the_service()
    {
        Assert.Equal(8 + 100, S2Limits.MeteredBytes(100));
        Assert.Equal(1000, S2Limits.MaxAppendRecords);
        Assert.Equal(1048576, S2Limits.MaxAppendMeteredBytes);
    }
}
