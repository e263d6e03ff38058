using System.Text.Json;
using AotEvents.Events;
using AotEvents.Pipeline;

namespace AotEvents.Core.Tests;

/// <summary>SPEC §1 truncation at 1,000,000 bytes, §3 413, and atomic NDJSON batches.</summary>
public sealed class TruncationAndBatchTests
{
    private const string Head = "{\"ts\":42,\"type\":\"page.big\",\"source\":{\"kind\":\"extension\",\"event\":\"E\",\"metadata\":{\"k\":\"v\"}},\"url\":\"https://example.com/x\"";

    private static string WithData(int dataBytes)
    {
        // data = {"blob":"aaa…"} of exactly dataBytes bytes
        return Head + ",\"data\":{\"blob\":\"" + new string('a', dataBytes - 11) + "\"}}";
    }

    [Fact]
    public void Data_of_1_100_000_bytes_is_dropped_and_everything_else_kept()
    {
        using var h = new Harness();
        string withoutData = h.PublishOk(Head + "}"); // seq 1: the same event with no data
        PublishOutcome o = h.Publish(WithData(1_100_000));
        Assert.True(o.Succeeded, o.Message);
        Assert.Equal(2, o.Envelope.Seq);
        string env = Text.Str(o.Envelope.Json);

        Assert.True(o.Envelope.Json.Length <= EventPipeline.MaxEnvelopeBytes);
        Assert.EndsWith(",\"data\":null,\"truncated\":true}}", env, StringComparison.Ordinal);
        string expected = withoutData.Replace("\"seq\":1,", "\"seq\":2,", StringComparison.Ordinal)[..^2] +
            ",\"data\":null,\"truncated\":true}}";
        Assert.Equal(expected, env);

        using var doc = JsonDocument.Parse(env);
        JsonElement ev = doc.RootElement.GetProperty("event");
        Assert.Equal(JsonValueKind.Null, ev.GetProperty("data").ValueKind);
        Assert.True(ev.GetProperty("truncated").GetBoolean());
        Assert.Equal("https://example.com/x", ev.GetProperty("url").GetString());
        Assert.Equal("v", ev.GetProperty("source").GetProperty("metadata").GetProperty("k").GetString());
        Assert.Equal("page.big", Text.Str(o.Envelope.Type));
        Assert.Equal(1, h.Pipeline.Metrics.Truncated);

        h.Pipeline.Dispose();
        List<string> lines = h.Lines(EventCategory.Page);
        Assert.Equal(2, lines.Count);
        Assert.Equal(expected, lines[1]);
    }

    [Fact]
    public void Envelope_of_exactly_1_000_000_bytes_is_kept_and_one_byte_more_is_truncated()
    {
        using var h = new Harness();
        int probe = h.Publish(WithData(1000)).Envelope.Json.Length; // seq 1
        int exact = 1000 + (EventPipeline.MaxEnvelopeBytes - probe);

        PublishOutcome kept = h.Publish(WithData(exact)); // seq 2: same digit count as seq 1
        Assert.Equal(EventPipeline.MaxEnvelopeBytes, kept.Envelope.Json.Length);
        Assert.DoesNotContain("truncated", Text.Str(kept.Envelope.Json.Slice(kept.Envelope.Json.Length - 40)), StringComparison.Ordinal);

        PublishOutcome cut = h.Publish(WithData(exact + 1)); // seq 3
        Assert.EndsWith(",\"data\":null,\"truncated\":true}}", Text.Str(cut.Envelope.Json), StringComparison.Ordinal);
        Assert.Equal(1, h.Pipeline.Metrics.Truncated);
    }

    [Fact]
    public void Envelope_still_too_big_without_data_is_413_and_publishes_nothing()
    {
        using var h = new Harness();
        h.PublishOk("{\"type\":\"x\"}");
        string hugeUrl = "https://e.com/" + new string('u', 1_000_000);
        string message = h.Refused("{\"type\":\"x\",\"url\":\"" + hugeUrl + "\"}", 413);
        Assert.Contains("1,000,000", message, StringComparison.Ordinal);
        h.Refused("{\"type\":\"x\",\"url\":\"" + hugeUrl + "\",\"data\":[1,2,3]}", 413);
        h.Refused("{\"type\":\"x\",\"source\":{\"metadata\":{\"k\":\"" + new string('m', 1_000_000) + "\"}}}", 413);
        Assert.Equal(2, h.Publish("{\"type\":\"x\"}").Envelope.Seq); // seq not consumed
        Assert.Equal(0, h.Pipeline.Metrics.Truncated);
        h.Pipeline.Dispose();
        Assert.Equal(2, h.Lines(EventCategory.System).Count);
        Assert.All(h.Lines(EventCategory.System), l => Assert.True(l.Length < 1000));
    }

    // ---- NDJSON batches ----------------------------------------------------------------

    [Fact]
    public void Batch_gets_consecutive_seqs_in_line_order()
    {
        using var h = new Harness();
        h.PublishOk("{\"type\":\"x\"}");
        PublishOutcome o = h.Pipeline.PublishBatch(Text.U8(
            "{\"type\":\"console.log\",\"data\":1}\r\n\n  \n{\"type\":\"network.req\",\"data\":2}\n{\"type\":\"page.load\",\"data\":3}\n"));
        Assert.True(o.Succeeded, o.Message);
        Assert.Equal(3, o.Accepted);
        Assert.Equal(2, o.FirstSeq);
        Assert.Equal(4, o.LastSeq);
        Assert.Equal(4, h.Pipeline.LastSeq);
        Assert.Equal(4, h.Session.Published);

        var reader = new RingReader(h.Pipeline.Ring, 1);
        EventCategory[] categories = [EventCategory.Console, EventCategory.Network, EventCategory.Page];
        for (int i = 0; i < 3; i++)
        {
            Assert.True(reader.TryRead(out RingReadResult r));
            Assert.Equal(2 + i, r.Envelope.Seq);
            Assert.Equal(categories[i], r.Envelope.Category);
            Assert.EndsWith(",\"data\":" + (i + 1) + "}}", Text.Str(r.Envelope.Json), StringComparison.Ordinal);
        }
        Assert.False(reader.TryRead(out _));
    }

    [Theory]
    [InlineData("{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"data\":1}\n{\"type\":\"d\"}", 400, "line 3")]
    [InlineData("{\"type\":\"a\"}\n{\"type\":\"b\"}\n{\"type\":\"c\"\n{\"type\":\"d\"}", 400, "line 3")]
    [InlineData("{\"type\":\"a\"}\n\n{\"type\":\"c\",\"source\":{\"kind\":\"cdp\"}}", 400, "line 3")]
    [InlineData("{\"type\":\"a\"}\r\n{\"type\":\"b\"}\r\n{\"type\":\"c\",\"ts\":\"now\"}\r\n", 400, "line 3")]
    [InlineData("{\"type\":\"console.a\"}\n{\"type\":\"network.b\"}\n{\"type\":\"console.c\"}", 422, "line 2")]
    [InlineData("{\"type\":\"console.a\"}\n{\"type\":\"console.b\",\"url\":\"@BIG@\"}", 413, "line 2")]
    public void Batch_is_atomic_and_names_the_refused_line(string batch, int status, string line)
    {
        using var h = new Harness("{\"categories\":[\"console\",\"system\"]}");
        h.PublishOk("{\"type\":\"console.first\"}");
        byte[] body = Text.U8(batch.Replace("@BIG@", new string('u', 1_000_001), StringComparison.Ordinal));
        PublishOutcome o = h.Pipeline.PublishBatch(body);
        Assert.Equal(status, o.Status);
        Assert.StartsWith(line + ":", o.Message, StringComparison.Ordinal);
        Assert.Equal(1, h.Pipeline.LastSeq);
        Assert.Equal(1, h.Pipeline.Ring.LastSeq);
        Assert.Equal(1, h.Session.Published);
        Assert.Equal(2, h.Publish("{\"type\":\"console.next\"}").Envelope.Seq);
        h.Pipeline.Dispose();
        Assert.Equal(2, Files.AllLines(h.Dir).Count);
    }

    [Fact]
    public void Batch_with_invalid_utf8_on_line_2_is_refused_whole()
    {
        using var h = new Harness();
        byte[] body = [.. Text.U8("{\"type\":\"a\"}\n{\"type\":\"b"), 0xFF, .. Text.U8("\"}\n{\"type\":\"c\"}")];
        PublishOutcome o = h.Pipeline.PublishBatch(body);
        Assert.Equal(400, o.Status);
        Assert.StartsWith("line 2:", o.Message, StringComparison.Ordinal);
        Assert.Equal(0, h.Pipeline.LastSeq);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n")]
    [InlineData(" \r\n\t\n")]
    public void Empty_batch_is_400(string batch)
    {
        using var h = new Harness();
        Assert.Equal(400, h.Pipeline.PublishBatch(Text.U8(batch)).Status);
        Assert.Equal(0, h.Pipeline.LastSeq);
    }

    [Fact]
    public void Batch_line_with_big_data_is_truncated_not_refused()
    {
        using var h = new Harness();
        PublishOutcome o = h.Pipeline.PublishBatch(Text.U8("{\"type\":\"a\"}\n" + WithData(1_100_000) + "\n{\"type\":\"c\"}"));
        Assert.True(o.Succeeded, o.Message);
        Assert.Equal(3, o.Accepted);
        Assert.Equal(1, h.Pipeline.Metrics.Truncated);
        Assert.Equal(1, h.Pipeline.Ring.TryGet(2, out Envelope e));
        Assert.EndsWith(",\"data\":null,\"truncated\":true}}", Text.Str(e.Json), StringComparison.Ordinal);
        Assert.True(e.Json.Length <= EventPipeline.MaxEnvelopeBytes);
    }

    [Fact]
    public async Task Concurrent_batches_and_singles_never_interleave_inside_a_batch()
    {
        using var h = new Harness();
        string batch = string.Join("\n", Enumerable.Range(0, 50).Select(i => "{\"type\":\"b\",\"data\":" + i + "}"));
        var tasks = Enumerable.Range(0, 40).Select(i => Task.Run(() =>
        {
            if (i % 2 == 0)
            {
                PublishOutcome o = h.Pipeline.PublishBatch(Text.U8(batch));
                Assert.Equal(50, o.Accepted);
                Assert.Equal(o.FirstSeq + 49, o.LastSeq);
                return (o.FirstSeq, o.LastSeq);
            }
            long s = h.Publish("{\"type\":\"single\"}").Envelope.Seq;
            return (s, s);
        })).ToArray();
        var ranges = (await Task.WhenAll(tasks)).OrderBy(r => r.Item1).ToList();
        long next = 1;
        foreach (var (first, last) in ranges)
        {
            Assert.Equal(next, first);
            next = last + 1;
        }
        Assert.Equal(20 * 50 + 20, h.Pipeline.LastSeq);
    }
}
