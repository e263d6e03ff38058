using System.Text;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §1 and §3: publishing, the envelope, refusals, truncation, batches, ack levels.</summary>
public sealed class PublishTests
{
    private const string NoSession = "no active capture session; POST /events/start first";

    private static long NowMicros() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks / 10;

    [Fact]
    public async Task Publish_answers_200_with_the_envelope_in_the_exact_member_order()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        string id = await http.StartSessionAsync();
        // Members deliberately out of order; data's own order, number spelling and escapes are kept.
        string data = """{"z":1.10,"a":[12345678901234567890,-0.5e3,true,null,"\u00e9","é"],"m":{"y":{},"x":[]}}""";
        string body = "{\"data\":" + data + ""","url":"https://example.com/","source":{"metadata":{"target_id":"T1","b":"2"},"event":"Runtime.consoleAPICalled","kind":"extension"},"detail_level":"verbose","category":"console","type":"console.log","ts":1795233936666000}""";
        ApiResult r = await http.PublishAsync(body);
        Assert.Equal(200, r.Status);
        Assert.StartsWith("application/json", r.Header("Content-Type"));
        Assert.Equal("memory", r.Header("X-Ack"));
        string expected = "{\"capture_session_id\":\"" + id + "\",\"seq\":1,\"event\":{\"ts\":1795233936666000,\"type\":\"console.log\"," +
            "\"category\":\"console\",\"detail_level\":\"verbose\",\"source\":{\"kind\":\"extension\",\"event\":\"Runtime.consoleAPICalled\"," +
            "\"metadata\":{\"target_id\":\"T1\",\"b\":\"2\"}},\"url\":\"https://example.com/\",\"data\":" + data + "}}";
        Assert.Equal(expected, r.Text);

        // The JSONL line is the same bytes.
        string line = Assert.Single(await Api.JsonlLinesAsync(d.DataDir, "console", 1));
        Assert.Equal(expected, line);
    }

    [Fact]
    public async Task Publish_fills_defaults_and_omits_absent_members()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        string id = await http.StartSessionAsync();
        long before = NowMicros();
        ApiResult r = await http.PublishAsync("""{"type":"custom.thing","data":null}""");
        long after = NowMicros();
        Assert.Equal(200, r.Status);
        JsonElement ev = r.Json().GetProperty("event");
        long ts = ev.GetProperty("ts").GetInt64();
        Assert.InRange(ts, before - 2_000_000, after + 2_000_000); // microseconds, the daemon's clock
        Assert.Equal($"{{\"capture_session_id\":\"{id}\",\"seq\":1,\"event\":{{\"ts\":{ts},\"type\":\"custom.thing\",\"category\":\"system\",\"detail_level\":\"standard\",\"source\":{{\"kind\":\"kernel_api\"}}}}}}", r.Text);

        // ts 0 means now as well.
        ApiResult zero = await http.PublishAsync("""{"type":"console.log","ts":0}""");
        Assert.InRange(zero.Json().GetProperty("event").GetProperty("ts").GetInt64(), before - 2_000_000, NowMicros() + 2_000_000);
        Assert.Equal(2, zero.Json().GetProperty("seq").GetInt64());
    }

    [Theory]
    [InlineData("console.log", "console")]
    [InlineData("network.request", "network")]
    [InlineData("page.load", "page")]
    [InlineData("navigation.commit", "page")]
    [InlineData("dom.mutation", "page")]
    [InlineData("target.attached", "page")]
    [InlineData("interaction.click", "interaction")]
    [InlineData("layout.shift", "interaction")]
    [InlineData("scroll.y", "interaction")]
    [InlineData("liveview.frame", "liveview")]
    [InlineData("captcha.solved", "captcha")]
    [InlineData("whatever.else", "system")]
    [InlineData("consoles.log", "system")]
    public async Task An_absent_category_is_derived_from_the_type_prefix(string type, string category)
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        Published p = await http.PublishOkAsync($"{{\"type\":\"{type}\"}}");
        Assert.Equal(category, JsonDocument.Parse(p.Envelope).RootElement.GetProperty("event").GetProperty("category").GetString());
        Assert.Equal(p.Text, Assert.Single(await Api.JsonlLinesAsync(d.DataDir, category, 1)));
    }

    [Fact]
    public async Task Publish_without_a_session_is_400_with_the_exact_message()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult r = await http.PublishAsync("""{"type":"console.log"}""");
        Assert.Equal(400, r.Status);
        Assert.Equal("{\"message\":\"" + NoSession + "\"}", r.Text);
        ApiResult batch = await http.PublishNdjsonAsync("{\"type\":\"console.log\"}\n");
        Assert.Equal(400, batch.Status);
        Assert.Contains(NoSession, batch.MessageText);
    }

    private static readonly (string Name, byte[] Body, int Status, string? Message)[] Refusals =
    [
        ("truncated object", "{\"type\":\"console.log\""u8.ToArray(), 400, null),
        ("not json", "not json"u8.ToArray(), 400, null),
        ("empty body", [], 400, null),
        ("array", "[{\"type\":\"console.log\"}]"u8.ToArray(), 400, null),
        ("string", "\"console.log\""u8.ToArray(), 400, null),
        ("trailing garbage", "{\"type\":\"console.log\"} x"u8.ToArray(), 400, null),
        ("two objects", "{\"type\":\"console.log\"}{\"type\":\"console.log\"}"u8.ToArray(), 400, null),
        ("trailing comma", "{\"type\":\"console.log\",}"u8.ToArray(), 400, null),
        ("single quotes", "{'type':'console.log'}"u8.ToArray(), 400, null),
        ("unclosed data", "{\"type\":\"console.log\",\"data\":{\"a\":[1,2}}"u8.ToArray(), 400, null),
        ("bad number", "{\"type\":\"console.log\",\"data\":01}"u8.ToArray(), 400, null),
        ("NaN", "{\"type\":\"console.log\",\"data\":NaN}"u8.ToArray(), 400, null),
        ("comment", "{\"type\":\"console.log\" /* c */}"u8.ToArray(), 400, null),
        ("invalid UTF-8 in data", [.. "{\"type\":\"console.log\",\"data\":\""u8, 0xFF, 0xFE, .. "\"}"u8], 400, null),
        ("invalid UTF-8 in type", [.. "{\"type\":\"console."u8, 0xC3, 0x28, .. "log\"}"u8], 400, null),
        ("overlong UTF-8", [.. "{\"type\":\"console.log\",\"url\":\""u8, 0xC0, 0xAF, .. "\"}"u8], 400, null),
        ("UTF-8 surrogate", [.. "{\"type\":\"console.log\",\"data\":{\"k\":\""u8, 0xED, 0xA0, 0x80, .. "\"}}"u8], 400, null),
        ("invalid UTF-8 in a key", [.. "{\"type\":\"console.log\",\"data\":{\""u8, 0x80, .. "\":1}}"u8], 400, null),
        ("truncated UTF-8 sequence", [.. "{\"type\":\"console.log\",\"data\":\""u8, 0xE2, 0x82, .. "\"}"u8], 400, null),
        ("type is a number", "{\"type\":5}"u8.ToArray(), 400, null),
        ("ts is a string", "{\"type\":\"console.log\",\"ts\":\"1\"}"u8.ToArray(), 400, null),
        ("ts is a fraction", "{\"type\":\"console.log\",\"ts\":1.5}"u8.ToArray(), 400, null),
        ("category is a number", "{\"type\":\"console.log\",\"category\":7}"u8.ToArray(), 400, null),
        ("detail_level is a bool", "{\"type\":\"console.log\",\"detail_level\":true}"u8.ToArray(), 400, null),
        ("source is a string", "{\"type\":\"console.log\",\"source\":\"extension\"}"u8.ToArray(), 400, null),
        ("source.kind is a number", "{\"type\":\"console.log\",\"source\":{\"kind\":1}}"u8.ToArray(), 400, null),
        ("source.event is a number", "{\"type\":\"console.log\",\"source\":{\"event\":1}}"u8.ToArray(), 400, null),
        ("metadata value is a number", "{\"type\":\"console.log\",\"source\":{\"metadata\":{\"a\":1}}}"u8.ToArray(), 400, null),
        ("metadata is an array", "{\"type\":\"console.log\",\"source\":{\"metadata\":[\"a\"]}}"u8.ToArray(), 400, null),
        ("url is a number", "{\"type\":\"console.log\",\"url\":5}"u8.ToArray(), 400, null),
        ("missing type", "{\"data\":1}"u8.ToArray(), 400, "type is required"),
        ("empty object", "{}"u8.ToArray(), 400, "type is required"),
        ("empty type", "{\"type\":\"\"}"u8.ToArray(), 400, "type is required"),
        ("control character in type", "{\"type\":\"console.\\u0001log\"}"u8.ToArray(), 400, null),
        ("tab in type", "{\"type\":\"console.\\tlog\"}"u8.ToArray(), 400, null),
        ("type over 256 bytes", Encoding.UTF8.GetBytes("{\"type\":\"" + new string('t', 257) + "\"}"), 400, null),
        ("unknown category", "{\"type\":\"console.log\",\"category\":\"bogus\"}"u8.ToArray(), 400, null),
        ("unknown detail level", "{\"type\":\"console.log\",\"detail_level\":\"loud\"}"u8.ToArray(), 400, null),
        ("unknown source kind", "{\"type\":\"console.log\",\"source\":{\"kind\":\"browser\"}}"u8.ToArray(), 400, null),
        ("source kind cdp", "{\"type\":\"console.log\",\"source\":{\"kind\":\"cdp\"}}"u8.ToArray(), 400, null),
    ];

    [Fact]
    public async Task Malformed_invalid_and_wrongly_typed_events_are_refused_without_harm()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        var accepted = new List<Published>
        {
            await http.PublishOkAsync("""{"type":"console.log","data":{"n":1}}"""),
            await http.PublishOkAsync("""{"type":"console.log","data":{"n":2}}"""),
        };

        var problems = new List<string>();
        foreach (var (name, body, status, message) in Refusals)
        {
            ApiResult r = await http.PublishBytesAsync(body);
            if (r.Status != status) problems.Add($"{name}: {r}");
            else
            {
                string? text = null;
                try
                {
                    text = r.MessageText;
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                }
                if (string.IsNullOrEmpty(text)) problems.Add($"{name}: no {{\"message\":…}} body: {r.Text}");
                else if (message is not null && text != message) problems.Add($"{name}: message {text}");
            }
            // Interleave accepted events: the refusals must not disturb them or consume a seq.
            accepted.Add(await http.PublishOkAsync($"{{\"type\":\"console.log\",\"data\":{{\"after\":\"{name}\"}}}}"));
        }
        Assert.True(problems.Count == 0, "wrong answers:\n" + string.Join("\n", problems));

        for (int i = 0; i < accepted.Count; i++) Assert.Equal(i + 1, accepted[i].Seq);
        string[] lines = await Api.JsonlLinesAsync(d.DataDir, "console", accepted.Count);
        Assert.Equal(accepted.Select(a => a.Text), lines);
        Assert.False(File.Exists(Path.Combine(d.DataDir, "system.log")) && File.ReadAllText(Path.Combine(d.DataDir, "system.log")).Length > 0);
        ApiResult s = await http.GetResultAsync("/events/session");
        Assert.Equal(accepted.Count, s.Json().GetProperty("published").GetInt64());
        Assert.Equal(200, (await http.GetResultAsync("/healthz")).Status);
    }

    [Fact]
    public async Task A_type_of_exactly_256_bytes_is_accepted()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        string type = "console." + new string('é', 124); // 8 + 248 = 256 bytes
        Assert.Equal(256, Encoding.UTF8.GetByteCount(type));
        Published p = await http.PublishOkAsync($"{{\"type\":\"{type}\"}}");
        Assert.Equal(type, JsonDocument.Parse(p.Envelope).RootElement.GetProperty("event").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Content_type_with_charset_is_json()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        ApiResult r = await http.PublishBytesAsync("""{"type":"console.log"}"""u8.ToArray(), "application/json; charset=utf-8");
        Assert.Equal(200, r.Status);
    }

    [Fact]
    public async Task A_category_the_session_does_not_admit_is_422()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync("""{"categories":["console"]}""");
        ApiResult explicitCategory = await http.PublishAsync("""{"type":"console.log","category":"network"}""");
        Assert.Equal(422, explicitCategory.Status);
        Assert.False(string.IsNullOrEmpty(explicitCategory.MessageText));
        ApiResult derived = await http.PublishAsync("""{"type":"network.request"}""");
        Assert.Equal(422, derived.Status);
        Published ok = await http.PublishOkAsync("""{"type":"console.log"}""");
        Assert.Equal(1, ok.Seq);
        Assert.False(File.Exists(Path.Combine(d.DataDir, "network.log")) && new FileInfo(Path.Combine(d.DataDir, "network.log")).Length > 0);
    }

    [Fact]
    public async Task A_body_over_EVENTS_MAX_BODY_BYTES_is_413_at_the_exact_limit()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_MAX_BODY_BYTES"] = "1024" });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        static byte[] Body(int size)
        {
            string head = "{\"type\":\"console.log\",\"data\":\"";
            return Encoding.ASCII.GetBytes(head + new string('x', size - head.Length - 2) + "\"}");
        }

        ApiResult atLimit = await http.PublishBytesAsync(Body(1024));
        Assert.Equal(200, atLimit.Status);
        ApiResult over = await http.PublishBytesAsync(Body(1025));
        Assert.True(over.Status == 413, "1025-byte body with a 1024-byte limit → " + over);
        ApiResult wayOver = await http.PublishBytesAsync(Body(200_000));
        Assert.Equal(413, wayOver.Status);

        // Chunked bodies are limited the same way.
        await using (RawConnection c = await RawConnection.OpenAsync(d))
        {
            byte[] big = Body(3000);
            await c.SendAsync("POST /events/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
            await c.SendAsync([.. Encoding.ASCII.GetBytes($"{big.Length:x}\r\n"), .. big, .. "\r\n0\r\n\r\n"u8]);
            RawResponse r = await c.ReadResponseAsync();
            Assert.Equal(413, r.Status);
        }

        Published after = await http.PublishOkAsync("""{"type":"console.log"}""");
        Assert.Equal(2, after.Seq);
        Assert.Equal(2, (await Api.JsonlLinesAsync(d.DataDir, "console", 2)).Length);
    }

    [Fact]
    public async Task An_envelope_still_too_big_after_dropping_data_is_413_and_nothing_is_written()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        Published first = await http.PublishOkAsync("""{"type":"console.log"}""");
        string url = "https://example.com/" + new string('u', 1_000_000);
        ApiResult r = await http.PublishAsync($"{{\"type\":\"console.log\",\"url\":\"{url}\",\"data\":\"small\"}}");
        Assert.Equal(413, r.Status);
        Assert.False(string.IsNullOrEmpty(r.MessageText));
        var metadata = string.Join(",", Enumerable.Range(0, 20_000).Select(i => $"\"k{i:D5}\":\"{new string('v', 50)}\""));
        ApiResult r2 = await http.PublishAsync($"{{\"type\":\"console.log\",\"source\":{{\"metadata\":{{{metadata}}}}}}}");
        Assert.Equal(413, r2.Status);
        Published next = await http.PublishOkAsync("""{"type":"console.log"}""", "?ack=disk");
        Assert.Equal(first.Seq + 1, next.Seq);
        Assert.Equal([first.Text, next.Text], await Api.JsonlLinesAsync(d.DataDir, "console", 2));
    }

    [Fact]
    public async Task Data_is_dropped_exactly_when_the_envelope_exceeds_1000000_bytes()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        string id = await http.StartSessionAsync();
        string Envelope(long seq, string dataJson) =>
            $"{{\"capture_session_id\":\"{id}\",\"seq\":{seq},\"event\":{{\"ts\":1,\"type\":\"t.x\",\"category\":\"system\",\"detail_level\":\"standard\",\"source\":{{\"kind\":\"kernel_api\"}}{dataJson}}}}}";
        int overhead = Envelope(1, ",\"data\":\"\"").Length;
        string fits = new('a', 1_000_000 - overhead);

        ApiResult exact = await http.PublishAsync($"{{\"type\":\"t.x\",\"ts\":1,\"data\":\"{fits}\"}}");
        Assert.Equal(200, exact.Status);
        Assert.Equal(1_000_000, exact.Body.Length);
        Assert.Equal(Envelope(1, $",\"data\":\"{fits}\""), exact.Text);

        ApiResult over = await http.PublishAsync($"{{\"type\":\"t.x\",\"ts\":1,\"data\":\"{fits}a\"}}");
        Assert.Equal(200, over.Status);
        Assert.Equal(Envelope(2, ",\"data\":null,\"truncated\":true"), over.Text);

        // A multi-megabyte object is dropped too; what is kept is intact, in the file as well.
        string big = "{\"blob\":\"" + new string('b', 3_000_000) + "\"}";
        ApiResult huge = await http.PublishAsync($"{{\"type\":\"console.log\",\"url\":\"https://example.com/\",\"source\":{{\"kind\":\"extension\",\"metadata\":{{\"t\":\"1\"}}}},\"data\":{big}}}");
        Assert.Equal(200, huge.Status);
        JsonElement ev = huge.Json().GetProperty("event");
        Assert.Equal(JsonValueKind.Null, ev.GetProperty("data").ValueKind);
        Assert.True(ev.GetProperty("truncated").GetBoolean());
        Assert.Equal("https://example.com/", ev.GetProperty("url").GetString());
        Assert.EndsWith(",\"url\":\"https://example.com/\",\"data\":null,\"truncated\":true}}", huge.Text);
        Assert.Equal(huge.Text, Assert.Single(await Api.JsonlLinesAsync(d.DataDir, "console", 1)));
        string[] system = await Api.JsonlLinesAsync(d.DataDir, "system", 2);
        Assert.Equal([exact.Text, over.Text], system);
    }

    [Fact]
    public async Task An_ndjson_batch_gets_consecutive_seqs()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        await http.PublishOkAsync("""{"type":"console.log"}""");
        ApiResult r = await http.PublishNdjsonAsync("{\"type\":\"page.load\"}\n{\"type\":\"network.request\",\"url\":\"https://example.com/\"}\n{\"type\":\"console.log\",\"data\":[1]}\n");
        Assert.Equal(200, r.Status);
        Assert.Equal("""{"accepted":3,"first_seq":2,"last_seq":4}""", r.Text);
        Assert.Equal("memory", r.Header("X-Ack"));
        // Without the final newline, and with ack=disk.
        ApiResult r2 = await http.PublishNdjsonAsync("{\"type\":\"console.log\",\"data\":[2]}\n{\"type\":\"console.log\",\"data\":[3]}", "?ack=disk");
        Assert.Equal(200, r2.Status);
        Assert.Equal("""{"accepted":2,"first_seq":5,"last_seq":6}""", r2.Text);
        Assert.Equal("disk", r2.Header("X-Ack"));
        string[] console = await Api.JsonlLinesAsync(d.DataDir, "console", 4, TimeSpan.Zero);
        Assert.Equal([1, 4, 5, 6], console.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("seq").GetInt64()));
        Assert.Equal("[3]", JsonDocument.Parse(console[3]).RootElement.GetProperty("event").GetProperty("data").GetRawText());
    }

    [Fact]
    public async Task An_ndjson_batch_is_atomic_and_names_the_refused_line()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync("""{"categories":["console","page"]}""");
        Published first = await http.PublishOkAsync("""{"type":"console.log"}""");
        string ok = "{\"type\":\"console.log\"}\n";
        (string Batch, int Status, int Line)[] cases =
        [
            (ok + ok + "{\"type\":\"\"}\n", 400, 3),
            (ok + "{\"type\":\"console.log\"\n" + ok, 400, 2),
            (ok + "{\"type\":\"network.request\"}\n" + "{\"type\":\"\"}\n", 422, 2),
            (ok + ok + ok + "{\"type\":\"console.log\",\"url\":\"" + new string('u', 1_000_100) + "\"}\n", 413, 4),
            ("{\"type\":\"console.log\",\"source\":{\"kind\":\"cdp\"}}\n" + ok, 400, 1),
            (ok + "[1,2]\n", 400, 2),
        ];
        var problems = new List<string>();
        foreach (var (batch, status, line) in cases)
        {
            ApiResult r = await http.PublishNdjsonAsync(batch);
            if (r.Status != status) problems.Add($"line {line}: {r.Status} {r.Text[..Math.Min(200, r.Text.Length)]}");
            else if (!System.Text.RegularExpressions.Regex.IsMatch(r.MessageText, $@"\bline {line}\b"))
                problems.Add($"message does not name line {line}: {r.MessageText}");
        }
        // Invalid UTF-8 on a line refuses the batch as well.
        ApiResult utf8 = await http.PublishBytesAsync([.. Encoding.ASCII.GetBytes(ok), .. "{\"type\":\"console.log\",\"data\":\""u8, 0xFF, .. "\"}\n"u8], "application/x-ndjson");
        if (utf8.Status != 400 || !utf8.MessageText.Contains("line 2")) problems.Add("invalid UTF-8 on line 2: " + utf8);
        Assert.True(problems.Count == 0, string.Join("\n", problems));

        Published next = await http.PublishOkAsync("""{"type":"console.log"}""", "?ack=disk");
        Assert.Equal(first.Seq + 1, next.Seq);
        Assert.Equal([first.Text, next.Text], await Api.JsonlLinesAsync(d.DataDir, "console", 2, TimeSpan.Zero));
        Assert.Equal(2, (await http.GetResultAsync("/events/session")).Json().GetProperty("published").GetInt64());
    }

    [Fact]
    public async Task Ack_disk_answers_after_the_line_is_in_the_file()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_FSYNC_INTERVAL"] = "5s" });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        for (int i = 0; i < 5; i++)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            ApiResult r = await http.PublishAsync($"{{\"type\":\"page.load\",\"data\":{i}}}", "?ack=disk");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2.5), $"ack=disk waited {watch.Elapsed} (fsync interval 5s): it must fsync at once");
            Assert.Equal(200, r.Status);
            Assert.Equal("disk", r.Header("X-Ack"));
            string[] lines = await Api.JsonlLinesAsync(d.DataDir, "page", i + 1, TimeSpan.Zero);
            Assert.Equal(i + 1, lines.Length);
            Assert.Equal(r.Text, lines[^1]);
        }
        ApiResult m = await http.PublishAsync("""{"type":"page.load"}""", "?ack=memory");
        Assert.Equal(200, m.Status);
        Assert.Equal("memory", m.Header("X-Ack"));
    }

    [Fact]
    public async Task Concurrent_ack_disk_publishers_all_get_their_line_on_disk()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        ApiResult[] results = await Task.WhenAll(Enumerable.Range(0, 40).Select(i =>
            http.PublishAsync($"{{\"type\":\"console.log\",\"data\":{i}}}", "?ack=disk")));
        Assert.All(results, r => Assert.Equal(200, r.Status));
        Assert.All(results, r => Assert.Equal("disk", r.Header("X-Ack")));
        string[] lines = await Api.JsonlLinesAsync(d.DataDir, "console", 40, TimeSpan.Zero);
        Assert.Equal(results.Select(r => r.Text).Order(StringComparer.Ordinal), lines.Order(StringComparer.Ordinal));
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("seq").GetInt64()));
    }

    [Fact]
    public async Task Ack_s2_without_S2_is_503_and_publishes_nothing()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        ApiResult r = await http.PublishAsync("""{"type":"console.log"}""", "?ack=s2");
        Assert.Equal(503, r.Status);
        Assert.False(string.IsNullOrEmpty(r.MessageText));
        ApiResult batch = await http.PublishNdjsonAsync("{\"type\":\"console.log\"}\n", "?ack=s2");
        Assert.Equal(503, batch.Status);
        Published p = await http.PublishOkAsync("""{"type":"console.log"}""");
        Assert.Equal(1, p.Seq);
    }
}
