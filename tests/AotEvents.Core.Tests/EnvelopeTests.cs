using System.Text.Json;
using AotEvents.Events;

namespace AotEvents.Core.Tests;

/// <summary>SPEC §1: envelope shape, member order, defaults and the bytes every consumer sees.</summary>
public sealed class EnvelopeTests
{
    [Fact]
    public void Full_event_serializes_to_the_exact_envelope_bytes_in_canonical_member_order()
    {
        using var h = new Harness();
        // Members deliberately out of order, with whitespace and newlines everywhere.
        const string input = """
            {
              "data" : { "message" : "hi" },
              "url" : "https://example.com/",
              "source" : { "metadata" : { "target_id" : "T1" }, "event" : "Runtime.consoleAPICalled", "kind" : "extension" },
              "detail_level" : "standard",
              "category" : "console",
              "type" : "console.log",
              "ts" : 1795233936666000
            }
            """;
        var outcome = h.Publish(input);
        Assert.True(outcome.Succeeded, outcome.Message);

        string expected = "{\"capture_session_id\":\"" + h.Session.Id + "\",\"seq\":1,\"event\":" +
            "{\"ts\":1795233936666000,\"type\":\"console.log\",\"category\":\"console\",\"detail_level\":\"standard\"," +
            "\"source\":{\"kind\":\"extension\",\"event\":\"Runtime.consoleAPICalled\",\"metadata\":{\"target_id\":\"T1\"}}," +
            "\"url\":\"https://example.com/\",\"data\":{\"message\":\"hi\"}}}";

        Assert.Equal(expected + "\n", Text.Str(outcome.Envelope.Line));
        Assert.Equal(expected, Text.Str(outcome.Envelope.Json));
        Assert.Equal(1, outcome.Envelope.Seq);
        Assert.Equal(EventCategory.Console, outcome.Envelope.Category);
        Assert.Equal(SourceKind.Extension, outcome.Envelope.SourceKind);
        Assert.Equal("console.log", Text.Str(outcome.Envelope.Type));
        Assert.Same(h.Session, outcome.Envelope.Session);

        // The ring holds the very same bytes, and so does the JSONL file.
        Assert.Equal(1, h.Pipeline.Ring.TryGet(1, out Envelope inRing));
        Assert.Same(outcome.Envelope.Line, inRing.Line);
        h.Pipeline.Dispose();
        Assert.Equal(expected + "\n", File.ReadAllText(Path.Combine(h.Dir, "console.log")));
    }

    [Fact]
    public void Minimal_event_gets_every_default_and_omits_optional_members()
    {
        using var h = new Harness();
        string env = h.PublishOk("{\"type\":\"x\"}");
        Assert.Equal("{\"capture_session_id\":\"" + h.Session.Id + "\",\"seq\":1,\"event\":{\"ts\":" + Harness.Now +
            ",\"type\":\"x\",\"category\":\"system\",\"detail_level\":\"standard\",\"source\":{\"kind\":\"kernel_api\"}}}", env);
    }

    [Theory]
    [InlineData("{\"type\":\"x\"}")]
    [InlineData("{\"type\":\"x\",\"ts\":0}")]
    [InlineData("{\"type\":\"x\",\"ts\":null}")]
    public void Absent_or_zero_ts_takes_the_daemon_clock(string input)
    {
        using var h = new Harness();
        using var doc = JsonDocument.Parse(h.PublishOk(input));
        Assert.Equal(Harness.Now, doc.RootElement.GetProperty("event").GetProperty("ts").GetInt64());
    }

    [Fact]
    public void Given_ts_is_kept()
    {
        using var h = new Harness();
        Assert.StartsWith("{\"ts\":1,", h.PublishEvent("{\"type\":\"x\",\"ts\":1}"), StringComparison.Ordinal);
        Assert.StartsWith("{\"ts\":9223372036854775807,", h.PublishEvent("{\"type\":\"x\",\"ts\":9223372036854775807}"), StringComparison.Ordinal);
    }

    [Fact]
    public void Default_clock_is_unix_microseconds()
    {
        using var dir = new TempDir();
        using var p = Pipeline.EventPipeline.Open(new Pipeline.EventPipelineOptions { DataDir = dir.Path }, _ => { });
        Assert.Equal(201, p.StartSession(default).Status);
        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        var outcome = p.Publish(Text.U8("{\"type\":\"x\"}"));
        long after = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1) * 1000;
        using var doc = JsonDocument.Parse(outcome.Envelope.JsonMemory);
        long ts = doc.RootElement.GetProperty("event").GetProperty("ts").GetInt64();
        Assert.InRange(ts, before, after);
    }

    [Theory]
    [InlineData("console.log", "console")]
    [InlineData("console", "console")]
    [InlineData("network.request", "network")]
    [InlineData("page.load", "page")]
    [InlineData("navigation.committed", "page")]
    [InlineData("dom.mutation", "page")]
    [InlineData("target.created", "page")]
    [InlineData("interaction.click", "interaction")]
    [InlineData("layout.shift", "interaction")]
    [InlineData("scroll.end", "interaction")]
    [InlineData("liveview.frame", "liveview")]
    [InlineData("captcha.solved", "captcha")]
    [InlineData("system.boot", "system")]
    [InlineData("session_ended", "system")]
    [InlineData("consoles.log", "system")]
    [InlineData("Console.log", "system")]
    [InlineData("x.console.log", "system")]
    [InlineData(".console", "system")]
    public void Category_is_derived_from_the_type_prefix(string type, string category)
    {
        using var h = new Harness();
        using var doc = JsonDocument.Parse(h.PublishEvent("{\"type\":\"" + type + "\"}"));
        Assert.Equal(category, doc.RootElement.GetProperty("category").GetString());
        Assert.Equal(category, EventVocabulary.Name(EventVocabulary.CategoryFromType(Text.U8(type))));
    }

    [Fact]
    public void Explicit_category_wins_over_the_type_prefix()
    {
        using var h = new Harness();
        var outcome = h.Publish("{\"type\":\"console.log\",\"category\":\"captcha\"}");
        Assert.Equal(EventCategory.Captcha, outcome.Envelope.Category);
        Assert.Contains("\"category\":\"captcha\"", Text.Str(outcome.Envelope.Json), StringComparison.Ordinal);
    }

    [Fact]
    public void Detail_level_defaults_to_the_session_default_and_an_explicit_one_wins()
    {
        using var h = new Harness("{\"detail_level\":\"verbose\"}");
        Assert.Contains("\"detail_level\":\"verbose\"", h.PublishEvent("{\"type\":\"x\"}"), StringComparison.Ordinal);
        Assert.Contains("\"detail_level\":\"raw\"", h.PublishEvent("{\"type\":\"x\",\"detail_level\":\"raw\"}"), StringComparison.Ordinal);
        Assert.Contains("\"detail_level\":\"minimal\"", h.PublishEvent("{\"type\":\"x\",\"detail_level\":\"minimal\"}"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"type\":\"x\"}", "kernel_api")]
    [InlineData("{\"type\":\"x\",\"source\":{}}", "kernel_api")]
    [InlineData("{\"type\":\"x\",\"source\":null}", "kernel_api")]
    [InlineData("{\"type\":\"x\",\"source\":{\"kind\":null}}", "kernel_api")]
    [InlineData("{\"type\":\"x\",\"source\":{\"kind\":\"kernel_api\"}}", "kernel_api")]
    [InlineData("{\"type\":\"x\",\"source\":{\"kind\":\"extension\"}}", "extension")]
    [InlineData("{\"type\":\"x\",\"source\":{\"kind\":\"local_process\"}}", "local_process")]
    public void Source_kind_defaults_to_kernel_api(string input, string kind)
    {
        using var h = new Harness();
        var outcome = h.Publish(input);
        Assert.True(outcome.Succeeded, outcome.Message);
        Assert.Contains("\"source\":{\"kind\":\"" + kind + "\"}", Text.Str(outcome.Envelope.Json), StringComparison.Ordinal);
        Assert.True(EventVocabulary.TryParseSourceKind(kind, out SourceKind parsed));
        Assert.Equal(parsed, outcome.Envelope.SourceKind);
    }

    [Fact]
    public void Unknown_members_are_ignored_and_cannot_forge_envelope_fields()
    {
        using var h = new Harness();
        string env = h.PublishOk("{\"seq\":99,\"capture_session_id\":\"forged\",\"truncated\":true,\"type\":\"x\",\"extra\":{\"a\":[1,2]}}");
        Assert.StartsWith("{\"capture_session_id\":\"" + h.Session.Id + "\",\"seq\":1,", env, StringComparison.Ordinal);
        Assert.DoesNotContain("forged", env, StringComparison.Ordinal);
        Assert.DoesNotContain("truncated", env, StringComparison.Ordinal);
        Assert.DoesNotContain("extra", env, StringComparison.Ordinal);
    }

    [Fact]
    public void Escaped_type_is_written_with_minimal_escaping_and_Type_matches_EscapeType()
    {
        using var h = new Harness();
        var outcome = h.Publish("{\"type\":\"a\\\"b\\\\c\\u00e9\\/d\"}");
        Assert.True(outcome.Succeeded, outcome.Message);
        Assert.Equal("a\\\"b\\\\cé/d", Text.Str(outcome.Envelope.Type));
        Assert.Equal(EventParser.EscapeType("a\"b\\cé/d"), outcome.Envelope.Type.ToArray());
        using var doc = JsonDocument.Parse(outcome.Envelope.JsonMemory);
        Assert.Equal("a\"b\\cé/d", doc.RootElement.GetProperty("event").GetProperty("type").GetString());
    }

    [Fact]
    public void Seqs_are_consecutive_from_one()
    {
        using var h = new Harness();
        for (int i = 1; i <= 20; i++) Assert.Equal(i, h.Publish("{\"type\":\"x\"}").Envelope.Seq);
        Assert.Equal(20, h.Pipeline.LastSeq);
    }
}
