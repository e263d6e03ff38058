using System.Text;
using static AotEvents.Blackbox.Tests.Api;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §8: EVENTS_API_TOKEN and EVENTS_CORS_ORIGINS.</summary>
public sealed class SecurityTests
{
    private const string Token = "s3cret-T0ken_value";

    private static KeyValuePair<string, string>[] Bearer(string token) => [new("Authorization", "Bearer " + token)];

    [Fact]
    public async Task With_EVENTS_API_TOKEN_every_endpoint_but_healthz_needs_the_bearer_token()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_API_TOKEN"] = Token });
        using var http = d.CreateClient();
        Assert.Equal(200, (await http.GetResultAsync("/healthz")).Status);

        (HttpMethod Method, string Path, string? Body)[] endpoints =
        [
            (HttpMethod.Post, "/events/start", null),
            (HttpMethod.Get, "/events/session", null),
            (HttpMethod.Post, "/events/publish", """{"type":"console.log"}"""),
            (HttpMethod.Get, "/events/stream", null),
            (HttpMethod.Post, "/events/stop", null),
            (HttpMethod.Get, "/telemetry/events", null),
            (HttpMethod.Get, "/metrics", null),
            (HttpMethod.Get, "/openapi.yaml", null),
        ];
        var problems = new List<string>();
        foreach (var (method, path, body) in endpoints)
        {
            byte[]? bytes = body is null ? null : Encoding.UTF8.GetBytes(body);
            foreach (var headers in new[] { [], Bearer("wrong"), Bearer(Token + "x"), Bearer(Token[..^1]), [new("Authorization", Token)],
                         [new("Authorization", "Basic " + Convert.ToBase64String(Encoding.ASCII.GetBytes("u:" + Token)))] })
            {
                ApiResult r = await http.SendAsync(method, path, bytes, "application/json", headers);
                if (r.Status != 401) problems.Add($"{method} {path} with [{string.Join(",", headers.Select(h => h.Value))}] → {r.Status}");
                else if (r.Header("WWW-Authenticate") is null) problems.Add($"{method} {path}: 401 without WWW-Authenticate");
            }
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));

        // Nothing was started or published by the refused requests; with the token everything works.
        Assert.Equal(404, (await http.SendAsync(HttpMethod.Get, "/events/session", headers: Bearer(Token))).Status);
        Assert.Equal(201, (await http.SendAsync(HttpMethod.Post, "/events/start", headers: Bearer(Token))).Status);
        ApiResult publish = await http.SendAsync(HttpMethod.Post, "/events/publish", """{"type":"console.log"}"""u8.ToArray(), "application/json", Bearer(Token));
        Assert.Equal(200, publish.Status);
        Assert.Equal(1, publish.Json().GetProperty("seq").GetInt64());
        Assert.Equal(200, (await http.SendAsync(HttpMethod.Get, "/metrics", headers: Bearer(Token))).Status);
        Assert.Equal(200, (await http.SendAsync(HttpMethod.Get, "/openapi.yaml", headers: Bearer(Token))).Status);
        Assert.Equal(200, (await http.SendAsync(HttpMethod.Get, "/telemetry/events", headers: Bearer(Token))).Status);

        // access_token in the query is for the stream only (EventSource cannot send headers).
        Assert.Equal(401, (await http.GetResultAsync("/events/session?access_token=" + Token)).Status);
        Assert.Equal(401, (await http.GetResultAsync("/events/stream?access_token=wrong")).Status);
        await using RawConnection c = await OpenStreamAsync(d, "/events/stream?after_seq=0&access_token=" + Uri.EscapeDataString(Token));
        await StreamTests.ReadPreambleAsync(c);
        await StreamTests.ExpectBytesAsync(c, Frame(new Published(1, publish.Body)));
        await using RawConnection h = await OpenStreamAsync(d, "/events/stream?after_seq=0", "Authorization: Bearer " + Token);
        await StreamTests.ReadPreambleAsync(h);
        await StreamTests.ExpectBytesAsync(h, Frame(new Published(1, publish.Body)));
    }

    private static async Task<RawResponse> RawAsync(DaemonProcess d, string request)
    {
        await using RawConnection c = await RawConnection.OpenAsync(d);
        await c.SendAsync(request);
        return await c.ReadResponseAsync();
    }

    private static void AssertContainsAll(string? list, params string[] items)
    {
        Assert.NotNull(list);
        string[] got = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        foreach (string item in items)
            Assert.True(got.Contains(item, StringComparer.OrdinalIgnoreCase) || got.Contains("*"), $"{item} missing from '{list}'");
    }

    [Fact]
    public async Task CORS_origins_get_preflights_and_allow_and_expose_headers()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string>
        {
            ["EVENTS_CORS_ORIGINS"] = "http://app.example, http://127.0.0.1:5173",
            ["EVENTS_API_TOKEN"] = Token,
        });
        foreach (string origin in new[] { "http://app.example", "http://127.0.0.1:5173" })
        {
            // Preflights are answered without the token (browsers send none on them).
            RawResponse pre = await RawAsync(d, $"OPTIONS /events/publish HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n" +
                "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type,authorization\r\n\r\n");
            Assert.True(pre.Status is 200 or 204, "preflight → " + pre);
            Assert.Equal(origin, pre.Header("Access-Control-Allow-Origin"));
            AssertContainsAll(pre.Header("Access-Control-Allow-Methods"), "POST", "GET");
            AssertContainsAll(pre.Header("Access-Control-Allow-Headers"), "Content-Type", "Authorization", "Last-Event-ID");

            RawResponse preStream = await RawAsync(d, $"OPTIONS /events/stream HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\n" +
                "Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: last-event-id\r\n\r\n");
            Assert.True(preStream.Status is 200 or 204, "stream preflight → " + preStream);
            Assert.Equal(origin, preStream.Header("Access-Control-Allow-Origin"));
        }

        RawResponse start = await RawAsync(d, $"POST /events/start HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\nAuthorization: Bearer {Token}\r\nContent-Length: 0\r\n\r\n");
        Assert.Equal(201, start.Status);
        Assert.Equal("http://app.example", start.Header("Access-Control-Allow-Origin"));
        string json = """{"type":"console.log"}""";
        RawResponse publish = await RawAsync(d, $"POST /events/publish HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\nAuthorization: Bearer {Token}\r\n" +
            $"Content-Type: application/json\r\nContent-Length: {json.Length}\r\n\r\n{json}");
        Assert.Equal(200, publish.Status);
        Assert.Equal("http://app.example", publish.Header("Access-Control-Allow-Origin"));
        AssertContainsAll(publish.Header("Access-Control-Expose-Headers"), "X-Ack", "X-Has-More", "X-Next-Offset");

        // The stream answers carry the header too.
        await using RawConnection s = await RawConnection.OpenAsync(d);
        await s.SendAsync($"GET /events/stream?access_token={Token} HTTP/1.1\r\nHost: x\r\nOrigin: http://127.0.0.1:5173\r\n\r\n");
        RawResponse streamHead = await s.ReadHeadAsync();
        Assert.Equal(200, streamHead.Status);
        Assert.Equal("http://127.0.0.1:5173", streamHead.Header("Access-Control-Allow-Origin"));

        // Other origins get no CORS headers.
        RawResponse evil = await RawAsync(d, $"GET /events/session HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\nAuthorization: Bearer {Token}\r\n\r\n");
        Assert.Equal(200, evil.Status);
        Assert.Null(evil.Header("Access-Control-Allow-Origin"));
        RawResponse evilPre = await RawAsync(d, "OPTIONS /events/publish HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example.evil\r\nAccess-Control-Request-Method: POST\r\n\r\n");
        Assert.Null(evilPre.Header("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task CORS_star_allows_any_origin_and_no_setting_allows_none()
    {
        await using (var star = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_CORS_ORIGINS"] = "*" }))
        {
            RawResponse r = await RawAsync(star, "GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: http://anything.example:8080\r\n\r\n");
            Assert.Equal("*", r.Header("Access-Control-Allow-Origin"));
            RawResponse pre = await RawAsync(star, "OPTIONS /events/publish HTTP/1.1\r\nHost: x\r\nOrigin: http://x.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n");
            Assert.True(pre.Status is 200 or 204, "preflight → " + pre);
            Assert.Equal("*", pre.Header("Access-Control-Allow-Origin"));
        }
        await using var none = await DaemonProcess.StartAsync();
        RawResponse plain = await RawAsync(none, "GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: http://app.example\r\n\r\n");
        Assert.Equal(200, plain.Status);
        Assert.Null(plain.Header("Access-Control-Allow-Origin"));
    }
}
