using System.Text.Json;
using AotEvents.Events;

namespace AotEvents.Core.Tests;

/// <summary>SPEC §1 and §3: what a publish refuses (and with which status), and what it keeps exactly.</summary>
public sealed class ValidationTests
{
    [Fact]
    public void No_active_session_is_a_400_with_the_spec_message()
    {
        using var h = new Harness(startBody: null);
        Assert.Equal("no active capture session; POST /events/start first", h.Refused("{\"type\":\"x\"}", 400));
        Assert.Equal(400, h.Pipeline.PublishBatch(Text.U8("{\"type\":\"x\"}")).Status);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"type\":\"\"}")]
    [InlineData("{\"type\":null}")]
    [InlineData("{\"ts\":5,\"data\":{\"type\":\"nested\"}}")]
    public void Missing_or_empty_type_is_type_is_required(string input)
    {
        using var h = new Harness();
        Assert.Equal("type is required", h.Refused(input, 400));
    }

    [Theory]
    [InlineData("cdp")]
    [InlineData("CDP")]
    [InlineData("Extension")]
    [InlineData("browser")]
    [InlineData("")]
    public void Source_kind_cdp_and_unknown_kinds_are_refused(string kind)
    {
        using var h = new Harness();
        string message = h.Refused("{\"type\":\"x\",\"source\":{\"kind\":\"" + kind + "\"}}", 400);
        Assert.Contains("kind", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Escaped_cdp_is_refused_too()
    {
        using var h = new Harness();
        h.Refused("{\"type\":\"x\",\"source\":{\"kind\":\"\\u0063dp\"}}", 400);
    }

    [Theory]
    [InlineData("Console")]
    [InlineData("consoles")]
    [InlineData("other")]
    [InlineData("")]
    public void Unknown_category_is_refused(string category)
    {
        using var h = new Harness();
        Assert.Contains("category", h.Refused("{\"type\":\"x\",\"category\":\"" + category + "\"}", 400), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Standard")]
    [InlineData("debug")]
    [InlineData("")]
    public void Unknown_detail_level_is_refused(string level)
    {
        using var h = new Harness();
        Assert.Contains("detail_level", h.Refused("{\"type\":\"x\",\"detail_level\":\"" + level + "\"}", 400), StringComparison.Ordinal);
    }

    [Fact]
    public void Type_of_exactly_256_bytes_is_accepted_and_257_refused()
    {
        using var h = new Harness();
        h.PublishOk("{\"type\":\"" + new string('a', 256) + "\"}");
        h.PublishOk("{\"type\":\"" + string.Concat(Enumerable.Repeat("é", 128)) + "\"}"); // 256 UTF-8 bytes
        Assert.Contains("256", h.Refused("{\"type\":\"" + new string('a', 257) + "\"}", 400), StringComparison.Ordinal);
        h.Refused("{\"type\":\"" + string.Concat(Enumerable.Repeat("é", 128)) + "a\"}", 400); // 257 bytes
        h.Refused("{\"type\":\"" + new string('a', 100_000) + "\"}", 400);
    }

    [Fact]
    public void Type_length_counts_unescaped_bytes()
    {
        using var h = new Harness();
        h.PublishOk("{\"type\":\"" + string.Concat(Enumerable.Repeat("\\u0061", 256)) + "\"}");
        h.Refused("{\"type\":\"" + string.Concat(Enumerable.Repeat("\\u0061", 257)) + "\"}", 400);
        h.Refused("{\"type\":\"" + string.Concat(Enumerable.Repeat("\\u00e9", 129)) + "\"}", 400); // 258 bytes
    }

    [Theory]
    [InlineData("a\\u0000b")]
    [InlineData("a\\u0001b")]
    [InlineData("a\\tb")]
    [InlineData("a\\nb")]
    [InlineData("a\\rb")]
    [InlineData("a\\u001fb")]
    [InlineData("a\\u007fb")]
    [InlineData("a\\u0085b")] // NEL, a C1 control character (Unicode Cc)
    [InlineData("a\\u009fb")]
    [InlineData("a\u0085b")]  // the same, sent raw as UTF-8 C2 85
    public void Type_with_control_characters_is_refused(string type)
    {
        using var h = new Harness();
        Assert.Contains("control", h.Refused("{\"type\":\"" + type + "\"}", 400), StringComparison.Ordinal);
    }

    [Fact]
    public void Raw_control_character_inside_a_string_is_malformed_json()
    {
        using var h = new Harness();
        h.Refused("{\"type\":\"a\tb\"}", 400);
    }

    [Theory]
    [InlineData("{\"type\":\"\\ud800\"}")]
    [InlineData("{\"type\":\"a\\udc00b\"}")]
    [InlineData("{\"type\":\"\\ud800\\u0041\"}")]
    public void Type_with_a_lone_surrogate_escape_is_a_400_not_an_exception(string input)
    {
        using var h = new Harness();
        h.Refused(input, 400);
    }

    [Theory]
    [InlineData("{\"type\":1}")]
    [InlineData("{\"type\":true}")]
    [InlineData("{\"type\":[\"x\"]}")]
    [InlineData("{\"type\":{\"a\":1}}")]
    [InlineData("{\"type\":\"x\",\"ts\":\"1795233936666000\"}")]
    [InlineData("{\"type\":\"x\",\"ts\":1.5}")]
    [InlineData("{\"type\":\"x\",\"ts\":-1}")]
    [InlineData("{\"type\":\"x\",\"ts\":1e3}")]
    [InlineData("{\"type\":\"x\",\"ts\":99999999999999999999}")]
    [InlineData("{\"type\":\"x\",\"ts\":true}")]
    [InlineData("{\"type\":\"x\",\"category\":1}")]
    [InlineData("{\"type\":\"x\",\"category\":[\"console\"]}")]
    [InlineData("{\"type\":\"x\",\"detail_level\":2}")]
    [InlineData("{\"type\":\"x\",\"source\":\"extension\"}")]
    [InlineData("{\"type\":\"x\",\"source\":[]}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"kind\":1}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"event\":1}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"event\":{}}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"metadata\":\"a=b\"}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"metadata\":[\"a\"]}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"metadata\":{\"a\":1}}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"metadata\":{\"a\":null}}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"metadata\":{\"a\":true}}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"metadata\":{\"a\":\"ok\",\"b\":{\"c\":\"d\"}}}}")]
    [InlineData("{\"type\":\"x\",\"source\":{\"metadata\":{\"a\":[\"d\"]}}}")]
    [InlineData("{\"type\":\"x\",\"url\":1}")]
    [InlineData("{\"type\":\"x\",\"url\":{\"href\":\"a\"}}")]
    [InlineData("{\"type\":\"x\",\"data\":1,\"data\":2}")]
    public void Wrong_field_types_are_400(string input)
    {
        using var h = new Harness();
        h.Refused(input, 400);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("[{\"type\":\"x\"}]")]
    [InlineData("\"x\"")]
    [InlineData("{\"type\":\"x\"")]
    [InlineData("{\"type\":\"x\",}")]
    [InlineData("{\"type\":\"x\"} x")]
    [InlineData("{\"type\":\"x\"}{\"type\":\"y\"}")]
    [InlineData("{\"type\":'x'}")]
    [InlineData("{type:\"x\"}")]
    [InlineData("{/*c*/\"type\":\"x\"}")]
    [InlineData("{\"type\":\"x\",\"data\":{\"a\":}}")]
    [InlineData("{\"type\":\"x\",\"data\":[1,2,]}")]
    [InlineData("{\"type\":\"x\",\"data\":NaN}")]
    [InlineData("{\"type\":\"x\",\"data\":01}")]
    [InlineData("{\"type\":\"x\",\"data\":\"\\q\"}")]
    public void Malformed_json_is_400(string input)
    {
        using var h = new Harness();
        h.Refused(input, 400);
    }

    [Theory]
    [InlineData(new byte[] { 0x7B, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D })]             // {"type":"\xFF"}
    [InlineData(new byte[] { 0x7B, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3A, 0x22, 0x61, 0xC3, 0x22, 0x7D })]       // truncated sequence
    [InlineData(new byte[] { 0x7B, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D })] // encoded surrogate
    [InlineData(new byte[] { 0x7B, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3A, 0x22, 0xC0, 0xAF, 0x22, 0x7D })]       // overlong '/'
    public void Invalid_utf8_is_400(byte[] body)
    {
        using var h = new Harness();
        Assert.Contains("UTF-8", h.Refused(body, 400), StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_inside_data_is_400()
    {
        using var h = new Harness();
        byte[] body = [.. Text.U8("{\"type\":\"x\",\"data\":{\"m\":\"a"), 0xC3, 0x28, .. Text.U8("\"}}")];
        h.Refused(body, 400);
    }

    [Fact]
    public void A_refused_publish_does_not_consume_a_seq()
    {
        using var h = new Harness();
        Assert.Equal(1, h.Publish("{\"type\":\"x\"}").Envelope.Seq);
        h.Refused("{\"type\":\"x\",\"source\":{\"kind\":\"cdp\"}}", 400);
        h.Refused("{", 400);
        Assert.Equal(2, h.Publish("{\"type\":\"x\"}").Envelope.Seq);
        Assert.Equal(2, h.Pipeline.Metrics.Refused);
        Assert.Equal(2, h.Pipeline.Metrics.Published);
    }

    [Fact]
    public void Category_not_admitted_by_the_session_is_422()
    {
        using var h = new Harness("{\"categories\":[\"console\",\"page\"]}");
        h.PublishOk("{\"type\":\"console.log\"}");
        h.PublishOk("{\"type\":\"dom.mutation\"}");
        Assert.Contains("network", h.Refused("{\"type\":\"network.request\"}", 422), StringComparison.Ordinal);
        h.Refused("{\"type\":\"console.log\",\"category\":\"system\"}", 422);
        h.Refused("{\"type\":\"whatever\"}", 422); // derived system
        // Validation comes first: a bad event in a non-admitted category is still a 400.
        h.Refused("{\"type\":\"network.x\",\"source\":{\"kind\":\"cdp\"}}", 400);
        Assert.Equal(2, h.Pipeline.LastSeq);
    }

    // ---- data kept exactly --------------------------------------------------------------

    [Theory]
    [InlineData("12345678901234567890.123456789e-5")]
    [InlineData("-0.000000000000000000000000000001")]
    [InlineData("1E+400")]
    [InlineData("123456789012345678901234567890")]
    [InlineData("0.1")]
    [InlineData("1.0")]
    [InlineData("-0")]
    [InlineData("true")]
    [InlineData("false")]
    [InlineData("\"\"")]
    [InlineData("[]")]
    [InlineData("{}")]
    [InlineData("[1,[2,[3]],{\"a\":null}]")]
    public void Data_values_are_kept_byte_exact(string data)
    {
        using var h = new Harness();
        string env = h.PublishOk("{\"type\":\"x\",\"data\":" + data + "}");
        Assert.EndsWith(",\"data\":" + data + "}}", env, StringComparison.Ordinal);
    }

    [Fact]
    public void Big_number_in_data_is_not_rounded()
    {
        using var h = new Harness();
        string env = h.PublishOk("{\"type\":\"x\",\"data\":{\"n\": 12345678901234567890.123456789e-5, \"m\":[ 1.10 , 2e10 ]}}");
        Assert.EndsWith(",\"data\":{\"n\":12345678901234567890.123456789e-5,\"m\":[1.10,2e10]}}}", env, StringComparison.Ordinal);
    }

    [Fact]
    public void Data_keeps_key_order_and_duplicate_keys_and_drops_insignificant_whitespace()
    {
        using var h = new Harness();
        const string input = "{\"type\":\"x\",\"data\":\r\n\t{ \"z\" : 1 ,\n  \"a\" : [ 1 , 2 , { \"b\" : \"x y\" } ] ,\r\n \"z\" : 2 , \"m\" :\n{ } }\n}";
        string env = h.PublishOk(input);
        Assert.EndsWith(",\"data\":{\"z\":1,\"a\":[1,2,{\"b\":\"x y\"}],\"z\":2,\"m\":{}}}}", env, StringComparison.Ordinal);
    }

    [Fact]
    public void Strings_in_data_keep_escapes_spaces_and_unicode_byte_for_byte()
    {
        using var h = new Harness();
        // Escaped quotes and backslashes (a string ending in an escaped backslash is the tricky one for the
        // whitespace stripper), escaped newline/tab, \u escapes incl. a surrogate pair, raw non-ASCII,
        // and whitespace inside strings that must survive.
        const string data = "{\"q\":\"say \\\"hi\\\"\",\"bs\":\"C:\\\\dir\\\\\",\"after\":\" a  b \",\"nl\":\"l1\\nl2\\r\\n\\t\"," +
            "\"u\":\"\\u00e9\\ud83d\\ude00\\u2028\",\"raw\":\"é😀 ✓\",\"sl\":\"a\\/b\",\"k\\\"ey\":\"v\"}";
        string spaced = data.Replace(",\"", " ,\n \"", StringComparison.Ordinal).Replace("{", "{ \n", StringComparison.Ordinal);
        string env = h.PublishOk("{\"type\":\"x\",\"data\":" + spaced + "}");
        Assert.EndsWith(",\"data\":" + data + "}}", env, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(env);
        JsonElement d = doc.RootElement.GetProperty("event").GetProperty("data");
        Assert.Equal("say \"hi\"", d.GetProperty("q").GetString());
        Assert.Equal("C:\\dir\\", d.GetProperty("bs").GetString());
        Assert.Equal(" a  b ", d.GetProperty("after").GetString());
        Assert.Equal("l1\nl2\r\n\t", d.GetProperty("nl").GetString());
        Assert.Equal("é😀\u2028", d.GetProperty("u").GetString());
        Assert.Equal("é😀 ✓", d.GetProperty("raw").GetString());
    }

    [Fact]
    public void Data_with_newlines_yields_a_single_jsonl_line()
    {
        using var h = new Harness();
        var outcome = h.Publish("{\n\"type\":\"x\",\n\"data\":\n[\n1,\n\"a\\nb\"\n]\n}\n");
        Assert.True(outcome.Succeeded, outcome.Message);
        byte[] line = outcome.Envelope.Line;
        Assert.Equal(line.Length - 1, Array.IndexOf(line, (byte)'\n'));
        Assert.DoesNotContain((byte)'\r', line);
        h.Pipeline.Dispose();
        Assert.Single(h.Lines(EventCategory.System));
    }

    [Theory]
    [InlineData("{\"type\":\"x\",\"data\":null}")]
    [InlineData("{\"type\":\"x\"}")]
    public void Null_or_absent_data_is_omitted(string input)
    {
        using var h = new Harness();
        Assert.DoesNotContain("data", h.PublishOk(input), StringComparison.Ordinal);
    }

    [Fact]
    public void Null_url_and_source_members_are_omitted()
    {
        using var h = new Harness();
        string env = h.PublishOk("{\"type\":\"x\",\"url\":null,\"source\":{\"event\":null,\"metadata\":null}}");
        Assert.EndsWith("\"source\":{\"kind\":\"kernel_api\"}}}", env, StringComparison.Ordinal);
    }

    [Fact]
    public void Url_and_source_event_are_kept_as_sent()
    {
        using var h = new Harness();
        string env = h.PublishOk("{\"type\":\"x\",\"url\":\"https://e.com/?q=\\\"a\\u0020b\\\"&x=\\/\",\"source\":{\"event\":\"Ev\\\\ent\"}}");
        Assert.Contains("\"event\":\"Ev\\\\ent\"", env, StringComparison.Ordinal);
        Assert.Contains("\"url\":\"https://e.com/?q=\\\"a\\u0020b\\\"&x=\\/\"", env, StringComparison.Ordinal);
    }

    [Fact]
    public void Metadata_of_strings_is_kept_minified_in_order()
    {
        using var h = new Harness();
        string env = h.PublishOk("{\"type\":\"x\",\"source\":{\"metadata\":{ \"z\" : \"1 2\" ,\n \"a\":\"\\\"q\\\"\", \"e\":\"\"}}}");
        Assert.Contains("\"metadata\":{\"z\":\"1 2\",\"a\":\"\\\"q\\\"\",\"e\":\"\"}", env, StringComparison.Ordinal);
        string empty = h.PublishOk("{\"type\":\"x\",\"source\":{\"metadata\":{}}}");
        Assert.Contains("\"metadata\":{}", empty, StringComparison.Ordinal);
    }

    [Fact]
    public void Parser_writes_the_event_member_directly()
    {
        var drafts = new EventDrafts();
        try
        {
            Assert.True(EventParser.TryParse(Text.U8("{\"type\":\"page.load\",\"data\":[1]}"), 7, DetailLevel.Raw, drafts, 3, out string? error), error);
            ref EventDraft d = ref drafts[0];
            Assert.Equal("{\"ts\":7,\"type\":\"page.load\",\"category\":\"page\",\"detail_level\":\"raw\",\"source\":{\"kind\":\"kernel_api\"},\"data\":[1]}",
                Text.Str(drafts.EventJson(d)));
            Assert.Equal(3, d.LineNumber);
            Assert.Equal(EventCategory.Page, d.Category);
            Assert.Equal(",\"data\":", Text.Str(drafts.EventJson(d).Slice(d.DataFieldStart, 8)));
            Assert.Equal("page.load", Text.Str(drafts.EventJson(d).Slice(d.TypeStart, d.TypeLength)));

            Assert.False(EventParser.TryParse(Text.U8("{\"type\":\"\"}"), 7, DetailLevel.Raw, drafts, 4, out error));
            Assert.Equal("type is required", error);
            Assert.Equal(1, drafts.Count);
        }
        finally
        {
            drafts.Dispose();
        }
    }
}
