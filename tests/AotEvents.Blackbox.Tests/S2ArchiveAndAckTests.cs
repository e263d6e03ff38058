using System.Diagnostics;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §7 archive paging (with and without S2), §3 ack=s2, §6 S2_* configuration errors.</summary>
public sealed class S2ArchiveAndAckTests
{
    [Fact]
    public async Task Paging_the_S2_archive_by_seven_returns_every_event_once_with_S2_seq_num_offsets()
    {
        await using S2Rig rig = await S2Rig.StartAsync();
        string first = await rig.StartSessionAsync();
        await rig.PublishAsync(300, batch: 100);
        await rig.StopSessionAsync();
        string second = await rig.StartSessionAsync();
        await rig.PublishAsync(200, batch: 100);
        await rig.WaitStoredAsync(501, TimeSpan.FromSeconds(20));
        var lines = rig.FileLines();
        rig.S2.ClearRequests();

        foreach ((string session, string query) in new[] { (first, "&capture_session_id=" + first), (second, "&capture_session_id=" + second), (second, "") })
        {
            (List<string> envelopes, List<long> offsets) = await S2Rig.PageArchiveAsync(rig.Http, query, 7);
            List<string> expected = lines.Where(l => l.Session == session).Select(l => l.Line).ToList();
            Assert.Equal(expected, envelopes);
            // offset = S2 seq_num: the stream's records are numbered 0, 1, …
            Assert.Equal(Enumerable.Range(1, (expected.Count - 1) / 7).Select(i => (long)i * 7), offsets);
        }
        // A page of 7 reads 8 records from S2 (7 and one to know there is more), not 1000.
        Assert.All(rig.S2.Requests.Where(r => r.Op == S2StandIn.S2Op.Read),
            r => Assert.Contains("count=8", r.Target, StringComparison.Ordinal));

        ApiResult categoryPage = await rig.Http.GetResultAsync($"/telemetry/events?capture_session_id={first}&category=network&limit=1000");
        Assert.Equal(lines.Where(l => l.Session == first && l.Line.Contains("\"category\":\"network\"", StringComparison.Ordinal)).Select(l => l.Line),
            JsonDocument.Parse(categoryPage.Body).RootElement.EnumerateArray().Select(e => e.GetRawText()));
    }

    [Fact]
    public async Task Paging_the_JSONL_archive_without_S2_by_seven_returns_every_event_once_with_seq_offsets()
    {
        await using DaemonProcess d = await DaemonProcess.StartAsync();
        using HttpClient http = d.CreateClient();
        string first = await http.StartSessionAsync();
        for (int i = 0; i < 3; i++)
            Assert.Equal(200, (await http.PublishNdjsonAsync(string.Concat(Enumerable.Range(0, 100).Select(k => $"{{\"type\":\"console.log\",\"data\":{{\"k\":{k}}}}}\n")))).Status);
        Assert.Equal(200, (await http.PostResultAsync("/events/stop")).Status);
        string second = await http.StartSessionAsync();
        for (int i = 0; i < 2; i++)
            Assert.Equal(200, (await http.PublishNdjsonAsync(string.Concat(Enumerable.Range(0, 100).Select(k => $"{{\"type\":\"network.x\",\"data\":{{\"k\":{k}}}}}\n")))).Status);
        await Api.JsonlLinesAsync(d.DataDir, "network", 200);

        foreach ((string session, string query, long firstSeq) in new[] { (first, "&capture_session_id=" + first, 1L), (second, "", 302L) })
        {
            (List<string> envelopes, List<long> offsets) = await S2Rig.PageArchiveAsync(http, query, 7);
            List<long> seqs = envelopes.Select(e => JsonDocument.Parse(e).RootElement.GetProperty("seq").GetInt64()).ToList();
            long count = session == first ? 301 : 200;
            Assert.Equal(Enumerable.Range(0, (int)count).Select(i => firstSeq + i), seqs);
            Assert.All(envelopes, e => Assert.Contains("\"capture_session_id\":\"" + session + "\"", e, StringComparison.Ordinal));
            // offset = seq: each page starts at the seq its predecessor's X-Next-Offset named.
            Assert.Equal(Enumerable.Range(1, (int)((count - 1) / 7)).Select(i => firstSeq + (i * 7)), offsets);
        }
    }

    [Fact]
    public async Task Ack_s2_answers_only_after_S2_acknowledged()
    {
        await using S2Rig rig = await S2Rig.StartAsync(new Dictionary<string, string> { ["S2_BATCHER_LINGER"] = "50ms" });
        string session = await rig.StartSessionAsync();

        ApiResult one = await rig.Http.PublishAsync("{\"type\":\"console.log\",\"data\":1}", "?ack=s2");
        Assert.Equal(200, one.Status);
        Assert.Equal("s2", one.Header("X-Ack"));
        Assert.Equal([one.Text], rig.S2.Bodies(S2Rig.Basin, session)); // already there when the answer came

        await rig.PublishAsync(200, batch: 200, query: "?ack=s2");
        Assert.Equal(201, rig.S2.Bodies(S2Rig.Basin, session).Count);

        // S2 down for 1.5 s: the answer waits for it.
        rig.S2.Faults.GoDown(TimeSpan.FromSeconds(1.5));
        var clock = Stopwatch.StartNew();
        ApiResult late = await rig.Http.PublishAsync("{\"type\":\"console.log\",\"data\":2}", "?ack=s2");
        Assert.Equal(200, late.Status);
        Assert.Equal("s2", late.Header("X-Ack"));
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1.2), $"answered after {clock.Elapsed}");
        Assert.Equal(late.Text, rig.S2.Bodies(S2Rig.Basin, session)[^1]);

        ApiResult memory = await rig.Http.PublishAsync("{\"type\":\"console.log\"}");
        Assert.Equal("memory", memory.Header("X-Ack"));
    }

    [Fact]
    public async Task Ack_s2_without_S2_is_503()
    {
        await using DaemonProcess d = await DaemonProcess.StartAsync();
        using HttpClient http = d.CreateClient();
        await http.StartSessionAsync();
        ApiResult r = await http.PublishAsync("{\"type\":\"console.log\"}", "?ack=s2");
        Assert.Equal(503, r.Status);
        Assert.Contains("S2", r.MessageText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("S2_BATCHER_MAX_RECORDS", "0", "between 1 and 1000")]
    [InlineData("S2_BATCHER_MAX_RECORDS", "1001", "between 1 and 1000")]
    [InlineData("S2_BATCHER_LINGER", "abc", "duration")]
    [InlineData("S2_BATCHER_MAX_BYTES", "2MiB", "1048576")]
    [InlineData("S2_SHUTDOWN_TIMEOUT", "soon", "duration")]
    [InlineData("S2_ENDPOINT", "not a url", "URL")]
    public async Task Bad_S2_settings_stop_the_start_with_a_message_naming_them(string name, string value, string hint)
    {
        var (code, _, stderr) = await DaemonProcess.RunToExitAsync(new Dictionary<string, string>
        {
            ["S2_BASIN"] = S2Rig.Basin,
            ["S2_ACCESS_TOKEN"] = S2Rig.Token,
            ["S2_ENDPOINT"] = "http://127.0.0.1:9",
            [name] = value,
        });
        Assert.Equal(2, code);
        Assert.Contains($"{name}={value}", stderr, StringComparison.Ordinal);
        Assert.Contains(hint, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("listening", stderr, StringComparison.Ordinal);
    }
}
