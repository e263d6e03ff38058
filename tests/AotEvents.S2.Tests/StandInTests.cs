using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using S2StandIn;

namespace AotEvents.S2.Tests;

/// <summary>The stand-in itself, driven with raw HTTP: what the client does not exercise.</summary>
public sealed class StandInTests : IAsyncLifetime
{
    private S2StandIn.S2StandIn _standIn = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _standIn = await TestSupport.StartStandInAsync();
        _http = new HttpClient { BaseAddress = new Uri(_standIn.BaseUrl + "/") };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _standIn.DisposeAsync();
    }

    private HttpRequestMessage Request(HttpMethod method, string path, string? json = null, bool auth = true, bool basin = true)
    {
        var request = new HttpRequestMessage(method, path);
        if (auth)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestSupport.Token);
        }

        if (basin)
        {
            request.Headers.Add("s2-basin", TestSupport.Basin);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return request;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpRequestMessage request)
    {
        using HttpResponseMessage response = await _http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task Without_a_bearer_token_every_request_is_401()
    {
        (HttpStatusCode status, JsonElement body) = await SendAsync(Request(HttpMethod.Get, "streams", auth: false));
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("permission_denied", body.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(body.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task Without_a_basin_the_request_is_400()
    {
        (HttpStatusCode status, JsonElement body) = await SendAsync(Request(HttpMethod.Get, "streams", basin: false));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("bad_header", body.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Unknown_paths_are_404_and_wrong_methods_405()
    {
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(Request(HttpMethod.Get, "basins"))).Status);
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await SendAsync(Request(HttpMethod.Delete, "streams/x/records"))).Status);
    }

    [Fact]
    public async Task Append_follows_the_spec_shapes_including_headers_and_base64()
    {
        _standIn.CreateStream(TestSupport.Basin, "shapes");
        (HttpStatusCode status, JsonElement ack) = await SendAsync(Request(HttpMethod.Post, "streams/shapes/records",
            """{"records":[{"body":"one","headers":[["k","v"]]},{"body":"two","timestamp":5}],"match_seq_num":0}"""));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(0, ack.GetProperty("start").GetProperty("seq_num").GetInt64());
        Assert.Equal(2, ack.GetProperty("end").GetProperty("seq_num").GetInt64());
        Assert.Equal(2, ack.GetProperty("tail").GetProperty("seq_num").GetInt64());
        IReadOnlyList<S2StandInRecord> records = _standIn.Records(TestSupport.Basin, "shapes");
        Assert.Equal("k", Encoding.UTF8.GetString(records[0].Headers[0].Key));
        Assert.True(records[1].Timestamp >= records[0].Timestamp, "timestamps never go backwards");

        HttpRequestMessage base64 = Request(HttpMethod.Post, "streams/shapes/records", """{"records":[{"body":"AAEC/w=="}]}""");
        base64.Headers.Add("s2-format", "base64");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(base64)).Status);
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, _standIn.Records(TestSupport.Basin, "shapes")[2].Body);

        HttpRequestMessage read = Request(HttpMethod.Get, "streams/shapes/records?seq_num=2");
        read.Headers.Add("s2-format", "base64");
        (_, JsonElement batch) = await SendAsync(read);
        Assert.Equal("AAEC/w==", batch.GetProperty("records")[0].GetProperty("body").GetString());
    }

    [Fact]
    public async Task Malformed_appends_are_400_and_invalid_ones_422()
    {
        _standIn.CreateStream(TestSupport.Basin, "bad");
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(Request(HttpMethod.Post, "streams/bad/records", "{not json"))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(Request(HttpMethod.Post, "streams/bad/records", """{"records":{}}"""))).Status);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await SendAsync(Request(HttpMethod.Post, "streams/bad/records", """{"records":[]}"""))).Status);
        Assert.Empty(_standIn.Records(TestSupport.Basin, "bad"));
    }

    [Fact]
    public async Task Fencing_tokens_are_enforced()
    {
        _standIn.CreateStream(TestSupport.Basin, "fenced");
        (HttpStatusCode fenced, _) = await SendAsync(Request(HttpMethod.Post, "streams/fenced/records", """{"records":[{"headers":[["","fence"]],"body":"tok"}]}"""));
        (HttpStatusCode wrong, JsonElement mismatch) = await SendAsync(Request(HttpMethod.Post, "streams/fenced/records", """{"records":[{"body":"x"}],"fencing_token":"other"}"""));
        (HttpStatusCode right, _) = await SendAsync(Request(HttpMethod.Post, "streams/fenced/records", """{"records":[{"body":"x"}],"fencing_token":"tok"}"""));

        Assert.Equal(HttpStatusCode.OK, fenced);
        Assert.Equal(HttpStatusCode.PreconditionFailed, wrong);
        Assert.Equal("tok", mismatch.GetProperty("fencing_token_mismatch").GetString());
        Assert.Equal(HttpStatusCode.OK, right);
    }

    [Fact]
    public async Task Streams_can_be_listed_ensured_configured_and_deleted()
    {
        Assert.Equal(HttpStatusCode.Created, (await SendAsync(Request(HttpMethod.Put, "streams/ensured"))).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(Request(HttpMethod.Put, "streams/ensured"))).Status);
        (HttpStatusCode created, JsonElement info) = await SendAsync(Request(HttpMethod.Post, "streams", """{"stream":"configured","config":{"timestamping":{"mode":"arrival"}}}"""));
        Assert.Equal(HttpStatusCode.Created, created);
        Assert.Equal("configured", info.GetProperty("name").GetString());
        Assert.True(DateTimeOffset.TryParse(info.GetProperty("created_at").GetString(), out _));

        (_, JsonElement config) = await SendAsync(Request(HttpMethod.Get, "streams/configured"));
        Assert.Equal("arrival", config.GetProperty("timestamping").GetProperty("mode").GetString());

        (_, JsonElement list) = await SendAsync(Request(HttpMethod.Get, "streams?prefix=ens"));
        Assert.Equal("ensured", Assert.Single(list.GetProperty("streams").EnumerateArray()).GetProperty("name").GetString());
        Assert.False(list.GetProperty("has_more").GetBoolean());

        (_, JsonElement limited) = await SendAsync(Request(HttpMethod.Get, "streams?limit=1"));
        Assert.True(limited.GetProperty("has_more").GetBoolean());

        Assert.Equal(HttpStatusCode.Accepted, (await SendAsync(Request(HttpMethod.Delete, "streams/ensured"))).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(Request(HttpMethod.Delete, "streams/ensured"))).Status);
    }

    [Fact]
    public async Task Create_stream_on_append_creates_missing_streams_when_enabled()
    {
        _standIn.CreateStreamOnAppend = true;
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(Request(HttpMethod.Post, "streams/auto/records", """{"records":[{"body":"x"}]}"""))).Status);
        Assert.True(_standIn.StreamExists(TestSupport.Basin, "auto"));
    }

    [Fact]
    public async Task A_unary_read_with_wait_long_polls_for_new_records()
    {
        _standIn.CreateStream(TestSupport.Basin, "poll");
        Task<(HttpStatusCode, JsonElement)> poll = SendAsync(Request(HttpMethod.Get, "streams/poll/records?seq_num=0&wait=5"));
        await Task.Delay(200);
        Assert.False(poll.IsCompleted);

        _standIn.Append(TestSupport.Basin, "poll", "arrived");
        (HttpStatusCode status, JsonElement batch) = await poll.WaitAsync(TimeSpan.FromSeconds(3));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("arrived", batch.GetProperty("records")[0].GetProperty("body").GetString());
        Assert.Equal(1, batch.GetProperty("tail").GetProperty("seq_num").GetInt64());
    }

    [Fact]
    public async Task An_sse_read_session_streams_batches_then_follows_new_records()
    {
        _standIn.CreateStream(TestSupport.Basin, "sse");
        _standIn.Append(TestSupport.Basin, "sse", "r0", "r1");
        HttpRequestMessage request = Request(HttpMethod.Get, "streams/sse/records?seq_num=0&count=3&wait=5");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));

        using HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Task<string> rest = reader.ReadToEndAsync();
        await Task.Delay(200);
        _standIn.Append(TestSupport.Basin, "sse", "r2");
        string events = await rest.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Contains("event: batch\nid: 1,2,", events, StringComparison.Ordinal);
        Assert.Contains("\"body\":\"r0\"", events, StringComparison.Ordinal);
        Assert.Contains("event: batch\nid: 2,3,", events, StringComparison.Ordinal);
        Assert.Contains("\"body\":\"r2\"", events, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", events, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bounded_sse_read_without_wait_ends_at_the_tail()
    {
        _standIn.CreateStream(TestSupport.Basin, "sse-bounded");
        _standIn.Append(TestSupport.Basin, "sse-bounded", "r0");
        HttpRequestMessage request = Request(HttpMethod.Get, "streams/sse-bounded/records?seq_num=0&count=5");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        request.Headers.Add("Last-Event-ID", "0,1,10"); // resume after seq_num 0 (1 record, 10 bytes seen)

        using HttpResponseMessage response = await _http.SendAsync(request);
        string events = await response.Content.ReadAsStringAsync();

        // Resumed after seq_num 0 = at the tail, bounded, no wait: the spec says 416.
        Assert.Equal((HttpStatusCode)416, response.StatusCode);
        Assert.Contains("\"tail\":{\"seq_num\":1", events, StringComparison.Ordinal);

        HttpRequestMessage fresh = Request(HttpMethod.Get, "streams/sse-bounded/records?seq_num=0&count=5");
        fresh.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using HttpResponseMessage bounded = await _http.SendAsync(fresh);
        string all = await bounded.Content.ReadAsStringAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Contains("\"body\":\"r0\"", all, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", all, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_are_counted_per_operation()
    {
        _standIn.CreateStream(TestSupport.Basin, "counted");
        await SendAsync(Request(HttpMethod.Get, "streams/counted/records/tail"));
        await SendAsync(Request(HttpMethod.Get, "streams/counted/records/tail"));
        await SendAsync(Request(HttpMethod.Post, "streams/counted/records", """{"records":[{"body":"x"}]}"""));

        Assert.Equal(2, _standIn.CountOf(S2Op.CheckTail));
        Assert.Equal(1, _standIn.CountOf(S2Op.Append));
        Assert.Equal(3, _standIn.CountOf(S2Op.All));
        Assert.Equal(3, _standIn.RequestCount);
    }
}
