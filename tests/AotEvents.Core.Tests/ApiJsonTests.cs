using System.Text.Json;
using AotEvents.Events;

namespace AotEvents.Core.Tests;

/// <summary>The hand-written JSON of the API answers, the start body and session.json.</summary>
public sealed class ApiJsonTests
{
    private static CaptureSession NewSession(int mask = EventVocabulary.AllCategoriesMask) =>
        new("0f8fad5b-d9cb-469f-a165-70867728950e", new DateTimeOffset(2026, 11, 21, 7, 49, 56, 974, TimeSpan.FromHours(2)),
            mask, DetailLevel.Verbose, 41);

    [Fact]
    public void Session_object_has_the_spec_members_in_order()
    {
        CaptureSession s = NewSession((1 << (int)EventCategory.Console) | (1 << (int)EventCategory.System));
        Assert.Equal("""{"id":"0f8fad5b-d9cb-469f-a165-70867728950e","status":"running","created_at":"2026-11-21T05:49:56.974Z","config":{"categories":["console","system"],"detail_level":"verbose"},"first_seq":null,"last_seq":null,"published":0}""",
            Text.Str(ApiJson.Session(s)));
        s.LastSeq = 44;
        s.IsStopped = true;
        Assert.EndsWith(""","first_seq":42,"last_seq":44,"published":3}""", Text.Str(ApiJson.Session(s)), StringComparison.Ordinal);
        Assert.Contains("\"status\":\"stopped\"", Text.Str(ApiJson.Session(s)), StringComparison.Ordinal);
    }

    [Fact]
    public void Created_at_keeps_three_fraction_digits_and_pads()
    {
        Span<byte> into = stackalloc byte[24];
        var t = new DateTimeOffset(7, 1, 2, 3, 4, 5, 6, TimeSpan.Zero);
        Assert.Equal("0007-01-02T03:04:05.006Z", Text.Str(ApiJson.FormatUtcMillis(t, into)));
    }

    [Fact]
    public void Message_batch_and_dropped_answers()
    {
        // The default encoder escapes HTML-sensitive characters, as the serializer did.
        Assert.Equal("""{"message":"a \u0022quoted\u0022 \u003Cb\u003E"}""", Text.Str(ApiJson.Message("a \"quoted\" <b>")));
        using (var m = JsonDocument.Parse(ApiJson.Message("é \n ✓")))
            Assert.Equal("é \n ✓", m.RootElement.GetProperty("message").GetString());
        Assert.Equal("""{"accepted":3,"first_seq":7,"last_seq":9}""", Text.Str(ApiJson.BatchResult(3, 7, 9)));
        Assert.Equal("""{"from_seq":4,"to_seq":34,"count":31}""", Text.Str(ApiJson.Dropped(4, 34)));
    }

    [Theory]
    [InlineData("""{"categories":["console","network"],"detail_level":"verbose"}""", "console,network", "verbose")]
    [InlineData("""{"categories":null,"detail_level":null}""", null, null)]
    [InlineData("""{"other":{"x":[1,2,{"y":null}]},"categories":[],"extra":true}""", "", null)]
    [InlineData("""{"categories":["page"],"categories":["system"]}""", "system", null)]
    [InlineData("""{"categories":["console",null]}""", "console,", null)]
    [InlineData(""" null """, null, null)]
    [InlineData("""{"detail_level":"r\u0061w"}""", null, "raw")]
    public void Start_bodies_that_are_the_shape(string body, string? categories, string? level)
    {
        Assert.True(ApiJson.TryReadStartRequest(Text.U8(body), out List<string?>? c, out string? l, out string? error), error);
        Assert.Equal(categories, c is null ? null : string.Join(",", c));
        Assert.Equal(level, l);
    }

    [Theory]
    [InlineData("""{"categories":"console"}""")]
    [InlineData("""{"categories":[1]}""")]
    [InlineData("""{"categories":["console"]""")]
    [InlineData("""{"detail_level":3}""")]
    [InlineData("""{"detail_level":"raw",}""")]
    [InlineData("""[]""")]
    [InlineData("\"x\"")]
    [InlineData("""{} {}""")]
    [InlineData("""{/*c*/}""")]
    [InlineData("""{"categories":["\ud800"]}""")]
    public void Start_bodies_that_are_not_the_shape_are_refused_with_a_reason(string body)
    {
        Assert.False(ApiJson.TryReadStartRequest(Text.U8(body), out _, out _, out string? error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Session_file_round_trips()
    {
        var file = new ApiJson.SessionFileData("id-1", new DateTimeOffset(2026, 11, 21, 7, 49, 56, TimeSpan.FromHours(-3)).AddTicks(9749062),
            0b101, "raw", 12, true, 30);
        Assert.Equal(file, ApiJson.ReadSessionFile(ApiJson.WriteSessionFile(file)));
    }

    [Fact]
    public void Session_file_written_by_the_serializer_of_earlier_versions_still_loads()
    {
        // What System.Text.Json's source-generated SessionFile wrote before.
        const string old = """{"id":"3e1c","created_at":"2026-11-21T07:49:56.9749062+00:00","category_mask":127,"detail_level":"standard","start_after_seq":5,"stopped":false,"last_seq":9}""";
        ApiJson.SessionFileData? read = ApiJson.ReadSessionFile(Text.U8(old));
        Assert.Equal(new ApiJson.SessionFileData("3e1c", DateTimeOffset.Parse("2026-11-21T07:49:56.9749062+00:00", System.Globalization.CultureInfo.InvariantCulture),
            127, "standard", 5, false, 9), read);
        Assert.Equal(old, Text.Str(ApiJson.WriteSessionFile(read!.Value)));
        Assert.Null(ApiJson.ReadSessionFile("null"u8));
    }

    [Theory]
    [InlineData("""{"created_at":"2026-11-21T07:49:56Z","detail_level":"raw"}""")]
    [InlineData("""{"id":"a","created_at":"yesterday","detail_level":"raw"}""")]
    [InlineData("""{"id":"a","created_at":"2026-11-21T07:49:56Z","detail_level":"raw","category_mask":"7"}""")]
    [InlineData("""{"id":null,"created_at":"2026-11-21T07:49:56Z","detail_level":"raw"}""")]
    [InlineData("""{"id":"a","created_at":"2026-11-21T07:49:56Z","detail_level":"raw"} x""")]
    [InlineData("""{"id":"a",""")]
    public void A_damaged_session_file_is_a_JsonException(string text)
    {
        Assert.ThrowsAny<JsonException>(() => ApiJson.ReadSessionFile(Text.U8(text)));
    }
}
