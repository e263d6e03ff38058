using System.Net;
using System.Net.Http.Headers;

namespace AotEvents.Blackbox.Tests;

/// <summary>What a publisher may call its body: JSON under any everyday name, never multipart.</summary>
public sealed class ContentTypeTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("application/x-www-form-urlencoded")] // what `curl -d` sends by default
    [InlineData("text/plain")]
    public async Task A_single_event_is_read_as_JSON_whatever_the_everyday_content_type(string? contentType)
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        (await http.PostAsync("/events/start", null)).EnsureSuccessStatusCode();
        var body = new ByteArrayContent("{\"type\":\"console.log\",\"data\":{\"n\":1}}"u8.ToArray());
        if (contentType is not null) body.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        HttpResponseMessage answer = await http.PostAsync("/events/publish", body);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Contains("\"seq\":1,", await answer.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_multipart_body_is_refused_with_415_and_nothing_is_published()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        (await http.PostAsync("/events/start", null)).EnsureSuccessStatusCode();
        var body = new ByteArrayContent("{\"type\":\"console.log\"}"u8.ToArray());
        body.Headers.ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=x");
        HttpResponseMessage answer = await http.PostAsync("/events/publish", body);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, answer.StatusCode);
        string session = await http.GetStringAsync("/events/session");
        Assert.Contains("\"published\":0", session);
    }
}
