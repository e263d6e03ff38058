using System.Net;
using System.Text;
using System.Text.Json;
using AotEvents.S2.Json;
using CommunityToolkit.HighPerformance.Buffers;

namespace AotEvents.S2.Tests;

/// <summary>The hand-written S2 JSON: what it accepts, what it refuses, and how the client reports it.</summary>
public class S2JsonTests
{
    private static ReadOnlySpan<byte> U8(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Append_input_and_create_stream_bodies()
    {
        using var append = new ArrayPoolBufferWriter<byte>();
        S2Json.WriteAppendInput(append, TestSupport.Bodies("""{"a":"<é>"}""", ""), 7);
        Assert.Equal("""{"records":[{"body":"{\"a\":\"<é>\"}"},{"body":""}],"match_seq_num":7}""", Encoding.UTF8.GetString(append.WrittenSpan));

        using var create = new ArrayPoolBufferWriter<byte>();
        S2Json.WriteCreateStream(create, "s/é");
        Assert.Equal("""{"stream":"s/é"}""", Encoding.UTF8.GetString(create.WrittenSpan));
    }

    [Fact]
    public void Ack_members_may_come_in_any_order_with_unknown_ones_and_absent_ones_read_as_zero()
    {
        S2AppendAck? ack = S2Json.ReadAppendAck(U8("""{"x":[{"y":1}],"tail":{"timestamp":3,"seq_num":9,"z":null},"start":{"seq_num":7,"timestamp":1}}"""));
        Assert.Equal(new S2AppendAck(new S2StreamPosition(7, 1), default, new S2StreamPosition(9, 3)), ack);
        Assert.Null(S2Json.ReadAppendAck(U8(" null ")));
    }

    [Fact]
    public void Read_batch_with_null_records_null_tail_and_null_body()
    {
        S2ReadBatch? batch = S2Json.ReadReadBatch(U8("""{"records":null,"tail":null}"""));
        Assert.Null(batch!.Records);
        Assert.Null(batch.Tail);

        batch = S2Json.ReadReadBatch(U8("""{"records":[{"seq_num":1,"body":null},{"seq_num":2,"body":"a\u00e9\"b"}]}"""));
        Assert.Equal(2, batch!.Records.Count);
        Assert.True(batch.Records[0].Body.IsEmpty);
        Assert.Equal("aé\"b", Encoding.UTF8.GetString(batch.Records[1].Body.Span));
    }

    [Theory]
    [InlineData("""{"start":{"seq_num":1.5}}""")]
    [InlineData("""{"start":{"seq_num":"1"}}""")]
    [InlineData("""{"start":{"seq_num":99999999999999999999}}""")]
    [InlineData("""{"start":[]}""")]
    [InlineData("""{"start":{"seq_num":1}} {}""")]
    [InlineData("""{"start":{"seq_num":1}""")]
    [InlineData("""[]""")]
    [InlineData("")]
    public void Ack_that_is_not_the_shape_is_a_JsonException(string json)
    {
        Assert.ThrowsAny<JsonException>(() => S2Json.ReadAppendAck(U8(json)));
    }

    [Theory]
    [InlineData("""{"records":[{"body":3}]}""")]
    [InlineData("""{"records":[{"body":"\ud800"}]}""")]
    [InlineData("""{"records":{}}""")]
    [InlineData("""{"records":[1]}""")]
    public void Read_batch_that_is_not_the_shape_is_a_JsonException(string json)
    {
        Assert.ThrowsAny<JsonException>(() => S2Json.ReadReadBatch(U8(json)));
    }

    [Fact]
    public void Error_bodies_read_only_the_members_of_their_status()
    {
        const string body = """{"seq_num_mismatch":4,"fencing_token_mismatch":null,"tail":{"seq_num":8,"timestamp":2},"code":"c","message":"m"}""";
        Assert.Equal(new S2Json.Answer(null, 4, null, "c", "m"), S2Json.ReadError(U8(body), 412));
        Assert.Equal(new S2Json.Answer(new S2StreamPosition(8, 2), null, null, "c", "m"), S2Json.ReadError(U8(body), 416));
        Assert.Equal(new S2Json.Answer(null, null, null, "c", "m"), S2Json.ReadError(U8(body), 503));
        // A member of another status is skipped, whatever its shape.
        Assert.Equal("c", S2Json.ReadError(U8("""{"tail":"?","code":"c"}"""), 500)!.Code);
    }

    [Theory]
    [InlineData("null", "empty answer")]
    [InlineData("""{"start":{"seq_num":"x"}}""", "unparsable answer")]
    [InlineData("""{"start":{"seq_num":0}} trailing""", "unparsable answer")]
    public async Task A_success_body_that_is_not_an_ack_is_a_retryable_invalid_response(string body, string reason)
    {
        var transport = new RecordingTransport(_ => RecordingTransport.Respond(HttpStatusCode.OK, body));
        using var client = new S2Client(new S2Options { Basin = "b", AccessToken = "t", Endpoint = "http://s2.test" }, (_, _) => transport);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync("s", TestSupport.Bodies("x"), 0));
        Assert.Equal(S2FailureKind.InvalidResponse, e.Kind);
        Assert.True(e.IsRetryable);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_416_body_gives_the_tail_and_a_412_body_the_expected_seq_num()
    {
        int call = 0;
        var transport = new RecordingTransport(_ => ++call == 1
            ? RecordingTransport.Respond(HttpStatusCode.RequestedRangeNotSatisfiable, """{"tail":{"seq_num":12,"timestamp":5}}""")
            : RecordingTransport.Respond(HttpStatusCode.PreconditionFailed, """{"seq_num_mismatch":12}"""));
        using var client = new S2Client(new S2Options { Basin = "b", AccessToken = "t", Endpoint = "http://s2.test" }, (_, _) => transport);

        S2Exception range = await Assert.ThrowsAsync<S2Exception>(() => client.ReadAsync("s", S2ReadStart.AtSeqNum(20)));
        Assert.Equal(new S2StreamPosition(12, 5), range.Tail);
        S2Exception mismatch = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync("s", TestSupport.Bodies("x"), 3));
        Assert.Equal(12, mismatch.ExpectedSeqNum);
        Assert.Equal("seq_num_mismatch", mismatch.Code);
    }
}
