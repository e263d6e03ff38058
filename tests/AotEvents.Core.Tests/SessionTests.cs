using System.Text.Json;
using AotEvents.Events;
using AotEvents.Pipeline;

namespace AotEvents.Core.Tests;

/// <summary>SPEC §2: capture sessions — start, stop, 409/404, session_ended, restart survival.</summary>
public sealed class SessionTests
{
    [Fact]
    public void Start_with_no_body_admits_all_seven_categories_at_standard()
    {
        using var h = new Harness(startBody: null);
        Assert.Null(h.Pipeline.ActiveSession); // GET /events/session → 404
        SessionOutcome started = h.Pipeline.StartSession(default);
        Assert.Equal(201, started.Status);
        CaptureSession s = started.Session!;
        Assert.Same(s, h.Pipeline.ActiveSession);
        Assert.Same(s, h.Pipeline.LastSession);
        Assert.False(string.IsNullOrEmpty(s.Id));
        Assert.Equal(EventVocabulary.AllCategoriesMask, s.CategoryMask);
        Assert.Equal(DetailLevel.Standard, s.DetailLevel);
        Assert.Equal(0, s.Published);
        Assert.Null(s.FirstSeq);

        string json = Text.Str(ApiJson.Session(s));
        using var dto = JsonDocument.Parse(json);
        Assert.Equal("running", dto.RootElement.GetProperty("status").GetString());
        Assert.Equal(["console", "network", "page", "interaction", "liveview", "captcha", "system"],
            dto.RootElement.GetProperty("config").GetProperty("categories").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal("standard", dto.RootElement.GetProperty("config").GetProperty("detail_level").GetString());
        Assert.Equal(s.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
            dto.RootElement.GetProperty("created_at").GetString());
        Assert.StartsWith("{\"id\":\"" + s.Id + "\",\"status\":\"running\",\"created_at\":\"", json, StringComparison.Ordinal);
        Assert.EndsWith("\"first_seq\":null,\"last_seq\":null,\"published\":0}", json, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  \n")]
    [InlineData("{}")]
    [InlineData("null")]
    public void Empty_or_trivial_start_bodies_mean_the_defaults(string body)
    {
        using var h = new Harness(startBody: null);
        SessionOutcome o = h.Pipeline.StartSession(Text.U8(body));
        Assert.Equal(201, o.Status);
        Assert.Equal(EventVocabulary.AllCategoriesMask, o.Session!.CategoryMask);
    }

    [Fact]
    public void Start_with_categories_and_level_configures_the_session()
    {
        using var h = new Harness("{\"categories\":[\"console\",\"network\"],\"detail_level\":\"verbose\"}");
        CaptureSession s = h.Session;
        Assert.True(s.Admits(EventCategory.Console));
        Assert.True(s.Admits(EventCategory.Network));
        Assert.False(s.Admits(EventCategory.System));
        Assert.Equal(DetailLevel.Verbose, s.DetailLevel);
        Assert.Equal(["console", "network"], ApiJson.CategoryNames(s));
    }

    [Theory]
    [InlineData("{\"categories\":[\"console\",\"bogus\"]}")]
    [InlineData("{\"categories\":[\"Console\"]}")]
    [InlineData("{\"detail_level\":\"loud\"}")]
    [InlineData("{\"categories\":\"console\"}")]
    [InlineData("{\"detail_level\":3}")]
    [InlineData("{\"categories\":[1]}")]
    [InlineData("{")]
    [InlineData("[]")]
    public void Start_with_a_bad_body_is_400_and_opens_nothing(string body)
    {
        using var h = new Harness(startBody: null);
        SessionOutcome o = h.Pipeline.StartSession(Text.U8(body));
        Assert.Equal(400, o.Status);
        Assert.False(string.IsNullOrEmpty(o.Message));
        Assert.Null(h.Pipeline.ActiveSession);
    }

    [Fact]
    public void Start_with_invalid_utf8_is_400()
    {
        using var h = new Harness(startBody: null);
        byte[] body = [.. Text.U8("{\"detail_level\":\"ver"), 0xFF, .. Text.U8("bose\"}")];
        Assert.Equal(400, h.Pipeline.StartSession(body).Status);
    }

    [Fact]
    public void Second_start_is_409_and_stop_without_session_is_404()
    {
        using var h = new Harness();
        SessionOutcome again = h.Pipeline.StartSession(default);
        Assert.Equal(409, again.Status);
        Assert.Equal("a capture session is already active", again.Message);

        Assert.Equal(200, h.Pipeline.StopSession().Status);
        SessionOutcome none = h.Pipeline.StopSession();
        Assert.Equal(404, none.Status);
        Assert.Equal("no active capture session", none.Message);
        Assert.Equal(201, h.Pipeline.StartSession(default).Status);
    }

    [Fact]
    public void Stop_publishes_session_ended_in_system_even_when_system_is_not_admitted()
    {
        using var h = new Harness("{\"categories\":[\"console\"],\"detail_level\":\"minimal\"}");
        CaptureSession s = h.Session;
        h.PublishOk("{\"type\":\"console.a\"}");
        h.PublishOk("{\"type\":\"console.b\"}");
        h.Refused("{\"type\":\"system.x\"}", 422);

        SessionOutcome stopped = h.Pipeline.StopSession();
        Assert.Equal(200, stopped.Status);
        Assert.Same(s, stopped.Session);
        Assert.True(s.IsStopped);
        Assert.Equal(3, s.Published); // counts include session_ended
        Assert.Equal(1, s.FirstSeq);
        Assert.Equal(3, s.LastSeqOrNull);
        Assert.Null(h.Pipeline.ActiveSession);
        Assert.Same(s, h.Pipeline.LastSession);
        Assert.Contains("\"status\":\"stopped\"", Text.Str(ApiJson.Session(s)), StringComparison.Ordinal);

        Assert.Equal(1, h.Pipeline.Ring.TryGet(3, out Envelope ended));
        Assert.Equal(EventCategory.System, ended.Category);
        Assert.Equal(SourceKind.KernelApi, ended.SourceKind);
        Assert.Equal("{\"capture_session_id\":\"" + s.Id + "\",\"seq\":3,\"event\":{\"ts\":" + Harness.Now +
            ",\"type\":\"session_ended\",\"category\":\"system\",\"detail_level\":\"minimal\",\"source\":{\"kind\":\"kernel_api\"}}}",
            Text.Str(ended.Json));

        Assert.Equal("no active capture session; POST /events/start first", h.Refused("{\"type\":\"console.late\"}", 400));

        h.Pipeline.Dispose();
        List<string> system = h.Lines(EventCategory.System);
        Assert.Equal([Text.Str(ended.Json)], system);
    }

    [Fact]
    public void New_session_after_stop_has_a_new_id_and_continues_the_seq()
    {
        using var h = new Harness();
        string first = h.Session.Id;
        h.PublishOk("{\"type\":\"x\"}");
        h.Pipeline.StopSession(); // seq 2
        Assert.Equal(201, h.Pipeline.StartSession(default).Status);
        Assert.NotEqual(first, h.Session.Id);
        PublishOutcome o = h.Publish("{\"type\":\"x\"}");
        Assert.Equal(3, o.Envelope.Seq);
        Assert.Equal(1, h.Session.Published);
        Assert.Equal(3, h.Session.FirstSeq);
        Assert.Contains(h.Session.Id, Text.Str(o.Envelope.Json), StringComparison.Ordinal);
    }

    [Fact]
    public void Active_session_survives_reopen_and_the_seq_continues()
    {
        using var h = new Harness("{\"categories\":[\"console\",\"page\"],\"detail_level\":\"raw\"}");
        string id = h.Session.Id;
        DateTimeOffset created = h.Session.CreatedAt;
        for (int i = 0; i < 3; i++) h.PublishOk("{\"type\":\"console.x\"}");

        h.Reopen(); // Dispose (like SIGTERM) + Open on the same dir

        CaptureSession s = h.Session;
        Assert.Equal(id, s.Id);
        Assert.False(s.IsStopped);
        Assert.Equal(created, s.CreatedAt);
        Assert.Equal(DetailLevel.Raw, s.DetailLevel);
        Assert.True(s.Admits(EventCategory.Page));
        Assert.False(s.Admits(EventCategory.Network));
        Assert.Equal(3, s.Published);
        Assert.Equal(3, h.Pipeline.LastSeq);

        PublishOutcome o = h.Publish("{\"type\":\"page.y\"}");
        Assert.Equal(4, o.Envelope.Seq);
        Assert.StartsWith("{\"capture_session_id\":\"" + id + "\",\"seq\":4,", Text.Str(o.Envelope.Json), StringComparison.Ordinal);
        Assert.Contains("\"detail_level\":\"raw\"", Text.Str(o.Envelope.Json), StringComparison.Ordinal);
        h.Refused("{\"type\":\"network.z\"}", 422);

        SessionOutcome stopped = h.Pipeline.StopSession();
        Assert.Equal(5, stopped.Session!.Published);
        Assert.Equal(1, stopped.Session.FirstSeq);
        Assert.Equal(5, stopped.Session.LastSeqOrNull);

        h.Reopen();
        Assert.Null(h.Pipeline.ActiveSession);
        Assert.Equal(id, h.Pipeline.LastSession!.Id);
        Assert.True(h.Pipeline.LastSession.IsStopped);
        Assert.Equal(5, h.Pipeline.LastSession.Published);
        Assert.Equal(5, h.Pipeline.LastSeq);
        Assert.Equal(400, h.Publish("{\"type\":\"x\"}").Status);
        Assert.Equal(201, h.Pipeline.StartSession(default).Status);
        Assert.Equal(6, h.Publish("{\"type\":\"x\"}").Envelope.Seq);
    }

    [Fact]
    public void Session_without_events_survives_reopen()
    {
        using var h = new Harness();
        string id = h.Session.Id;
        h.Reopen();
        Assert.Equal(id, h.Session.Id);
        Assert.Equal(0, h.Session.Published);
        Assert.Equal(1, h.Publish("{\"type\":\"x\"}").Envelope.Seq);
    }

    [Fact]
    public void Seq_is_not_reused_after_reopen_when_the_files_lost_the_tail_of_a_stopped_session()
    {
        // A crash can lose ack=memory lines that were never written, while session.json (fsync'd at stop)
        // remembers them: seqs handed out (publish answers, SSE) must never be given out again.
        using var h = new Harness();
        for (int i = 0; i < 5; i++) h.PublishOk("{\"type\":\"console.x\"}");
        h.Pipeline.StopSession(); // session_ended = seq 6, in system.log
        h.Pipeline.Dispose();
        File.Delete(Path.Combine(h.Dir, "system.log"));
        string console = File.ReadAllText(Path.Combine(h.Dir, "console.log"));
        File.WriteAllText(Path.Combine(h.Dir, "console.log"), string.Join("", console.Split('\n').Take(3).Select(l => l + "\n")));

        h.Reopen();
        Assert.Equal(201, h.Pipeline.StartSession(default).Status);
        long seq = h.Publish("{\"type\":\"x\"}").Envelope.Seq;
        Assert.True(seq > 6, $"seq {seq} reuses a seq already handed out (1..6)");
    }
}
