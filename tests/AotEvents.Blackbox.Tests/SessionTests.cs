using System.Globalization;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §2: capture sessions.</summary>
public sealed class SessionTests
{
    private static readonly string[] AllCategories = ["console", "network", "page", "interaction", "liveview", "captcha", "system"];

    private static void AssertSessionShape(JsonElement s, string status)
    {
        Assert.Equal(JsonValueKind.Object, s.ValueKind);
        string[] members = s.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.Equal(["id", "status", "created_at", "config", "first_seq", "last_seq", "published"], members);
        Assert.False(string.IsNullOrEmpty(s.GetProperty("id").GetString()));
        Assert.Equal(status, s.GetProperty("status").GetString());
        string created = s.GetProperty("created_at").GetString()!;
        Assert.Matches(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", created);
        var createdAt = DateTimeOffset.Parse(created, CultureInfo.InvariantCulture);
        Assert.InRange(createdAt, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Equal(["categories", "detail_level"], s.GetProperty("config").EnumerateObject().Select(p => p.Name).ToArray());
    }

    [Fact]
    public async Task Start_returns_201_with_the_session_listing_all_seven_categories_by_default()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult r = await http.PostResultAsync("/events/start");
        Assert.Equal(201, r.Status);
        Assert.StartsWith("application/json", r.Header("Content-Type"));
        JsonElement s = r.Json();
        AssertSessionShape(s, "running");
        string[] categories = s.GetProperty("config").GetProperty("categories").EnumerateArray().Select(c => c.GetString()!).ToArray();
        Assert.Equal(AllCategories.Order(), categories.Order());
        Assert.Equal("standard", s.GetProperty("config").GetProperty("detail_level").GetString());
        Assert.Equal(0, s.GetProperty("published").GetInt64());

        // An empty JSON object is the same as no body.
        await http.PostResultAsync("/events/stop");
        ApiResult r2 = await http.PostResultAsync("/events/start", "{}");
        Assert.Equal(201, r2.Status);
        Assert.Equal(7, r2.Json().GetProperty("config").GetProperty("categories").GetArrayLength());
        Assert.NotEqual(s.GetProperty("id").GetString(), r2.Json().GetProperty("id").GetString());
    }

    [Fact]
    public async Task Start_with_categories_and_detail_level_limits_and_defaults_the_session()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult r = await http.PostResultAsync("/events/start", """{"categories":["console","network"],"detail_level":"verbose"}""");
        Assert.Equal(201, r.Status);
        JsonElement config = r.Json().GetProperty("config");
        Assert.Equal(["console", "network"], config.GetProperty("categories").EnumerateArray().Select(c => c.GetString()!).Order().ToArray());
        Assert.Equal("verbose", config.GetProperty("detail_level").GetString());

        // The session's detail level is the default of events that give none; one that gives its own keeps it.
        Published p = await http.PublishOkAsync("""{"type":"console.log"}""");
        Assert.Equal("verbose", JsonDocument.Parse(p.Envelope).RootElement.GetProperty("event").GetProperty("detail_level").GetString());
        Published q = await http.PublishOkAsync("""{"type":"console.log","detail_level":"minimal"}""");
        Assert.Equal("minimal", JsonDocument.Parse(q.Envelope).RootElement.GetProperty("event").GetProperty("detail_level").GetString());
    }

    [Fact]
    public async Task Start_while_a_session_is_active_is_409_and_keeps_the_session()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        string id = await http.StartSessionAsync();
        ApiResult r = await http.PostResultAsync("/events/start");
        Assert.Equal(409, r.Status);
        Assert.Equal("""{"message":"a capture session is already active"}""", r.Text);
        ApiResult s = await http.GetResultAsync("/events/session");
        Assert.Equal(200, s.Status);
        Assert.Equal(id, s.Json().GetProperty("id").GetString());
    }

    [Theory]
    [InlineData("""{"categories":["console","bogus"]}""")]
    [InlineData("""{"categories":["Console"]}""")]
    [InlineData("""{"detail_level":"loud"}""")]
    [InlineData("""{"categories":"console"}""")]
    [InlineData("""{"categories":["console"]""")]
    public async Task Start_with_an_unknown_category_or_level_is_400_and_starts_nothing(string body)
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult r = await http.PostResultAsync("/events/start", body);
        Assert.Equal(400, r.Status);
        Assert.False(string.IsNullOrEmpty(r.MessageText));
        Assert.Equal(404, (await http.GetResultAsync("/events/session")).Status);
    }

    [Fact]
    public async Task Get_session_is_404_without_one_and_200_with_the_live_counts()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult none = await http.GetResultAsync("/events/session");
        Assert.Equal(404, none.Status);
        Assert.Equal("""{"message":"no active capture session"}""", none.Text);

        string id = await http.StartSessionAsync();
        Published a = await http.PublishOkAsync("""{"type":"console.log"}""");
        Published b = await http.PublishOkAsync("""{"type":"page.load"}""");
        ApiResult r = await http.GetResultAsync("/events/session");
        Assert.Equal(200, r.Status);
        JsonElement s = r.Json();
        AssertSessionShape(s, "running");
        Assert.Equal(id, s.GetProperty("id").GetString());
        Assert.Equal(a.Seq, s.GetProperty("first_seq").GetInt64());
        Assert.Equal(b.Seq, s.GetProperty("last_seq").GetInt64());
        Assert.Equal(2, s.GetProperty("published").GetInt64());
    }

    [Fact]
    public async Task Stop_publishes_session_ended_counts_it_and_closes_publishing()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        // Even a session that does not admit `system` gets its session_ended envelope.
        string id = await http.StartSessionAsync("""{"categories":["console"]}""");
        Published a = await http.PublishOkAsync("""{"type":"console.log","data":1}""");
        Published b = await http.PublishOkAsync("""{"type":"console.log","data":2}""");

        ApiResult r = await http.PostResultAsync("/events/stop");
        Assert.Equal(200, r.Status);
        JsonElement s = r.Json();
        AssertSessionShape(s, "stopped");
        Assert.Equal(id, s.GetProperty("id").GetString());
        Assert.Equal(3, s.GetProperty("published").GetInt64());
        Assert.Equal(a.Seq, s.GetProperty("first_seq").GetInt64());
        long endedSeq = s.GetProperty("last_seq").GetInt64();
        Assert.Equal(b.Seq + 1, endedSeq);

        // The final envelope: type session_ended, category system, kind kernel_api, no data, in that session.
        string[] system = await Api.JsonlLinesAsync(d.DataDir, "system", 1);
        string ended = Assert.Single(system);
        JsonElement e = JsonDocument.Parse(ended).RootElement;
        Assert.Equal(id, e.GetProperty("capture_session_id").GetString());
        Assert.Equal(endedSeq, e.GetProperty("seq").GetInt64());
        JsonElement ev = e.GetProperty("event");
        Assert.Equal("session_ended", ev.GetProperty("type").GetString());
        Assert.Equal("system", ev.GetProperty("category").GetString());
        Assert.Equal("kernel_api", ev.GetProperty("source").GetProperty("kind").GetString());
        Assert.False(ev.TryGetProperty("data", out _), "session_ended carries no data: " + ended);

        Assert.Equal(404, (await http.GetResultAsync("/events/session")).Status);
        ApiResult again = await http.PostResultAsync("/events/stop");
        Assert.Equal(404, again.Status);
        Assert.False(string.IsNullOrEmpty(again.MessageText));
        ApiResult publish = await http.PublishAsync("""{"type":"console.log"}""");
        Assert.Equal(400, publish.Status);

        // A new session continues the global seq.
        await http.StartSessionAsync();
        Published next = await http.PublishOkAsync("""{"type":"console.log"}""");
        Assert.Equal(endedSeq + 1, next.Seq);
    }

    [Fact]
    public async Task Stop_without_a_session_is_404()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult r = await http.PostResultAsync("/events/stop");
        Assert.Equal(404, r.Status);
        Assert.StartsWith("application/json", r.Header("Content-Type"));
        Assert.False(string.IsNullOrEmpty(r.MessageText));
    }

    [Fact]
    public async Task The_active_session_survives_a_restart_and_seq_continues()
    {
        await using var first = await DaemonProcess.StartAsync();
        string id;
        using (var http = first.CreateClient())
        {
            id = await http.StartSessionAsync("""{"categories":["console","page"],"detail_level":"raw"}""");
            await http.PublishOkAsync("""{"type":"console.log","data":"one"}""");
            await http.PublishOkAsync("""{"type":"page.load","data":"two"}""");
        }

        await using var second = await first.RestartAsync();
        Assert.Equal(0, first.ExitCode);
        using var http2 = second.CreateClient();
        ApiResult r = await http2.GetResultAsync("/events/session");
        Assert.Equal(200, r.Status);
        JsonElement s = r.Json();
        Assert.Equal(id, s.GetProperty("id").GetString());
        Assert.Equal("running", s.GetProperty("status").GetString());
        Assert.Equal(2, s.GetProperty("published").GetInt64());
        Assert.Equal("raw", s.GetProperty("config").GetProperty("detail_level").GetString());
        Assert.Equal(["console", "page"], s.GetProperty("config").GetProperty("categories").EnumerateArray().Select(c => c.GetString()!).Order().ToArray());

        Published third = await http2.PublishOkAsync("""{"type":"console.log","data":"three"}""");
        Assert.Equal(3, third.Seq);
        Assert.Equal(id, JsonDocument.Parse(third.Envelope).RootElement.GetProperty("capture_session_id").GetString());
        Assert.Equal(422, (await http2.PublishAsync("""{"type":"network.request"}""")).Status);
        ApiResult stop = await http2.PostResultAsync("/events/stop");
        Assert.Equal(200, stop.Status);
        Assert.Equal(4, stop.Json().GetProperty("published").GetInt64());
        Assert.Equal(4, stop.Json().GetProperty("last_seq").GetInt64());
    }

    [Fact]
    public async Task Seq_continues_after_a_crash_without_a_session()
    {
        await using var first = await DaemonProcess.StartAsync();
        using (var http = first.CreateClient())
        {
            await http.StartSessionAsync();
            for (int i = 0; i < 5; i++) await http.PublishOkAsync("""{"type":"console.log"}""", "?ack=disk");
            Assert.Equal(200, (await http.PostResultAsync("/events/stop")).Status);
        }
        Assert.Single(await Api.JsonlLinesAsync(first.DataDir, "system", 1)); // session_ended reached the file
        await first.KillAsync();
        await using var second = await DaemonProcess.StartAsync(dataDir: first.DataDir);
        using var http2 = second.CreateClient();
        Assert.Equal(404, (await http2.GetResultAsync("/events/session")).Status);
        await http2.StartSessionAsync();
        Published p = await http2.PublishOkAsync("""{"type":"console.log"}""");
        Assert.Equal(7, p.Seq); // 5 events + session_ended, never reused
    }
}
