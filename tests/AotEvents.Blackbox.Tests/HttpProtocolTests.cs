using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using static AotEvents.Blackbox.Tests.Api;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §8 HTTP behaviour over raw sockets: keep-alive, pipelining, chunked bodies, limits, timeouts.</summary>
public sealed class HttpProtocolTests
{
    private static string PublishRequest(string json, string extraHeaders = "") =>
        $"POST /events/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n{extraHeaders}\r\n{json}";

    [Fact]
    public async Task One_connection_serves_many_requests_with_keep_alive()
    {
        await using var d = await DaemonProcess.StartAsync();
        await using RawConnection c = await RawConnection.OpenAsync(d);
        await c.SendAsync("POST /events/start HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        Assert.Equal(201, (await c.ReadResponseAsync()).Status);
        for (int i = 1; i <= 5; i++)
        {
            await c.SendAsync(PublishRequest($"{{\"type\":\"console.log\",\"data\":{i}}}"));
            RawResponse r = await c.ReadResponseAsync();
            Assert.Equal(200, r.Status);
            Assert.NotEqual("close", r.Header("Connection"));
            Assert.Equal(i, r.Json().GetProperty("seq").GetInt64());
        }
        await c.SendAsync("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        RawResponse last = await c.ReadResponseAsync();
        Assert.Equal(200, last.Status);
        var (rest, clean) = await c.ReadToCloseAsync(TimeSpan.FromSeconds(5));
        Assert.Empty(rest);
        Assert.True(clean);
    }

    [Fact]
    public async Task Refused_publishes_keep_the_connection_usable()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        await using RawConnection c = await RawConnection.OpenAsync(d);
        byte[] invalidUtf8 = [.. "{\"type\":\"console.log\",\"data\":\""u8, 0xFF, .. "\"}"u8];
        await c.SendAsync([.. Encoding.ASCII.GetBytes($"POST /events/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {invalidUtf8.Length}\r\n\r\n"), .. invalidUtf8]);
        Assert.Equal(400, (await c.ReadResponseAsync()).Status);
        await c.SendAsync(PublishRequest("{\"type\":"));
        Assert.Equal(400, (await c.ReadResponseAsync()).Status);
        await c.SendAsync(PublishRequest("""{"type":"console.log","category":"nope"}"""));
        Assert.Equal(400, (await c.ReadResponseAsync()).Status);
        await c.SendAsync(PublishRequest("""{"type":"console.log"}"""));
        RawResponse ok = await c.ReadResponseAsync();
        Assert.Equal(200, ok.Status);
        Assert.Equal(1, ok.Json().GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task An_HTTP_1_0_request_is_answered_and_closed()
    {
        await using var d = await DaemonProcess.StartAsync();
        await using RawConnection c = await RawConnection.OpenAsync(d);
        await c.SendAsync("GET /healthz HTTP/1.0\r\n\r\n");
        RawResponse r = await c.ReadResponseAsync();
        Assert.Equal(200, r.Status);
        var (rest, clean) = await c.ReadToCloseAsync(TimeSpan.FromSeconds(5));
        Assert.Empty(rest);
        Assert.True(clean);
    }

    [Fact]
    public async Task Idle_keep_alive_connections_are_closed_after_EVENTS_IDLE_TIMEOUT_but_streams_are_not()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_IDLE_TIMEOUT"] = "1s" });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        await using RawConnection stream = await OpenStreamAsync(d, "/events/stream");
        await StreamTests.ReadPreambleAsync(stream);
        await using RawConnection idle = await RawConnection.OpenAsync(d);
        await idle.SendAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, (await idle.ReadResponseAsync()).Status);
        var watch = Stopwatch.StartNew();
        var (rest, clean) = await idle.ReadToCloseAsync(TimeSpan.FromSeconds(6));
        Assert.Empty(rest);
        Assert.True(clean, "an idle close is a FIN, not a reset");
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(4));

        await Task.Delay(1500); // the stream outlives the idle timeout
        Published p = await http.PublishOkAsync("""{"type":"console.log"}""");
        await StreamTests.ExpectBytesAsync(stream, Frame(p));
    }

    [Fact]
    public async Task Twenty_pipelined_publishes_in_one_send_are_answered_in_order()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        await using RawConnection c = await RawConnection.OpenAsync(d);
        var all = new StringBuilder();
        for (int i = 0; i < 20; i++) all.Append(PublishRequest($"{{\"type\":\"console.log\",\"data\":{{\"i\":{i}}}}}"));
        all.Append("GET /events/session HTTP/1.1\r\nHost: x\r\n\r\n");
        await c.SendAsync(all.ToString());
        for (int i = 0; i < 20; i++)
        {
            RawResponse r = await c.ReadResponseAsync();
            Assert.Equal(200, r.Status);
            JsonElement e = r.Json();
            Assert.Equal(i + 1, e.GetProperty("seq").GetInt64());
            Assert.Equal(i, e.GetProperty("event").GetProperty("data").GetProperty("i").GetInt32());
        }
        RawResponse session = await c.ReadResponseAsync();
        Assert.Equal(200, session.Status);
        Assert.Equal(20, session.Json().GetProperty("published").GetInt64());
        Assert.Equal(0, c.Buffered.Length);
    }

    [Fact]
    public async Task A_chunked_request_body_is_de_chunked()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        string id = await http.StartSessionAsync();
        await using RawConnection c = await RawConnection.OpenAsync(d);
        string json = "{\"type\":\"console.log\",\"data\":{\"message\":\"" + new string('c', 10_000) + "\",\"end\":true}}";
        byte[] body = Encoding.UTF8.GetBytes(json);
        await c.SendAsync("POST /events/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        // Uneven chunks, one with an extension, sent in pieces with pauses; a trailer at the end.
        int[] sizes = [1, 17, 4000, 5000];
        int at = 0;
        foreach (int size in sizes)
        {
            string ext = size == 17 ? ";name=value" : "";
            await c.SendAsync([.. Encoding.ASCII.GetBytes($"{size:X}{ext}\r\n"), .. body.AsSpan(at, size), .. "\r\n"u8]);
            at += size;
            await Task.Delay(30);
        }
        await c.SendAsync([.. Encoding.ASCII.GetBytes($"{body.Length - at:x}\r\n"), .. body.AsSpan(at), .. "\r\n0\r\nX-Trailer: yes\r\n\r\n"u8]);
        RawResponse r = await c.ReadResponseAsync();
        Assert.Equal(200, r.Status);
        Assert.StartsWith($"{{\"capture_session_id\":\"{id}\",\"seq\":1,\"event\":{{\"ts\":", r.BodyText);
        Assert.EndsWith(",\"data\":" + json[(json.IndexOf("\"data\":", StringComparison.Ordinal) + 7)..^1] + "}}", r.BodyText);

        // The connection is still usable: an NDJSON batch, chunked, right behind it.
        byte[] batch = "{\"type\":\"page.load\"}\n{\"type\":\"page.load\"}\n"u8.ToArray();
        await c.SendAsync([.. "POST /events/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"u8,
            .. Encoding.ASCII.GetBytes($"{batch.Length:x}\r\n"), .. batch, .. "\r\n0\r\n\r\n"u8]);
        RawResponse r2 = await c.ReadResponseAsync();
        Assert.Equal(200, r2.Status);
        Assert.Equal("""{"accepted":2,"first_seq":2,"last_seq":3}""", r2.BodyText);
    }

    [Fact]
    public async Task Expect_100_continue_is_answered_before_the_body()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        await using RawConnection c = await RawConnection.OpenAsync(d);
        string json = "{\"type\":\"console.log\",\"data\":\"" + new string('e', 20_000) + "\"}";
        await c.SendAsync($"POST /events/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {json.Length}\r\nExpect: 100-continue\r\n\r\n");
        RawResponse interim = await c.ReadHeadAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(100, interim.Status);
        await c.SendAsync(json);
        RawResponse r = await c.ReadResponseAsync();
        Assert.Equal(200, r.Status);
        Assert.Equal(1, r.Json().GetProperty("seq").GetInt64());

        // A small body, also with Expect.
        string small = """{"type":"console.log"}""";
        await c.SendAsync($"POST /events/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {small.Length}\r\nExpect: 100-continue\r\n\r\n");
        Assert.Equal(100, (await c.ReadHeadAsync(TimeSpan.FromSeconds(5))).Status);
        await c.SendAsync(small);
        Assert.Equal(200, (await c.ReadResponseAsync()).Status);
    }

    [Fact]
    public async Task A_header_block_over_16_KiB_is_431_and_one_under_is_served()
    {
        await using var d = await DaemonProcess.StartAsync();
        await using (RawConnection ok = await RawConnection.OpenAsync(d))
        {
            await ok.SendAsync($"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 15 * 1024)}\r\n\r\n");
            Assert.Equal(200, (await ok.ReadResponseAsync()).Status);
        }
        await using (RawConnection big = await RawConnection.OpenAsync(d))
        {
            await big.SendAsync($"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 17 * 1024)}\r\n\r\n");
            RawResponse r = await big.ReadResponseAsync();
            Assert.Equal(431, r.Status);
        }
        // Many small header fields adding up over the limit.
        await using (RawConnection many = await RawConnection.OpenAsync(d))
        {
            string fields = string.Concat(Enumerable.Range(0, 400).Select(i => $"X-H{i}: {new string('v', 40)}\r\n"));
            await many.SendAsync($"GET /healthz HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
            Assert.Equal(431, (await many.ReadResponseAsync()).Status);
        }
        // A header block that never ends is cut off at the limit, without waiting for the blank line.
        await using (RawConnection endless = await RawConnection.OpenAsync(d))
        {
            await endless.SendAsync($"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 20 * 1024)}");
            Assert.Equal(431, (await endless.ReadResponseAsync(TimeSpan.FromSeconds(5))).Status);
        }
        using var http = d.CreateClient();
        Assert.Equal(200, (await http.GetResultAsync("/healthz")).Status);
    }

    [Fact]
    public async Task Unknown_paths_are_404_and_wrong_methods_405()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        foreach (string path in new[] { "/", "/events", "/events/nope", "/events/publish/x", "/healthz/", "/EVENTS/START" })
        {
            ApiResult r = await http.GetResultAsync(path);
            Assert.True(r.Status == 404, $"GET {path} → {r}");
            Assert.False(string.IsNullOrEmpty(r.MessageText));
        }
        (HttpMethod Method, string Path)[] wrong =
        [
            (HttpMethod.Get, "/events/publish"),
            (HttpMethod.Get, "/events/start"),
            (HttpMethod.Get, "/events/stop"),
            (HttpMethod.Post, "/events/session"),
            (HttpMethod.Post, "/events/stream"),
            (HttpMethod.Post, "/healthz"),
            (HttpMethod.Delete, "/metrics"),
            (HttpMethod.Put, "/openapi.yaml"),
            (HttpMethod.Post, "/telemetry/events"),
        ];
        foreach (var (method, path) in wrong)
        {
            ApiResult r = await http.SendAsync(method, path, method == HttpMethod.Get || method == HttpMethod.Delete ? null : "{}"u8.ToArray(), "application/json");
            Assert.True(r.Status == 405, $"{method} {path} → {r}");
            Assert.NotNull(r.Header("Allow"));
        }
        // Query strings do not change the route.
        Assert.Equal(200, (await http.GetResultAsync("/healthz?x=1")).Status);
    }

    [Fact]
    public async Task A_client_sending_one_byte_per_second_is_cut_off()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_REQUEST_TIMEOUT"] = "2s" });
        using var http = d.CreateClient();
        await http.StartSessionAsync();

        // Sends `prefix` at once, then `trickle` one byte per second; returns what came back and when it ended.
        async Task<(string Outcome, TimeSpan Elapsed)> TrickleAsync(byte[] prefix, byte[] trickle)
        {
            await using RawConnection c = await RawConnection.OpenAsync(d);
            var watch = Stopwatch.StartNew();
            if (prefix.Length > 0) await c.SendAsync(prefix);
            var reader = c.ReadToCloseAsync(TimeSpan.FromSeconds(15));
            foreach (byte b in trickle)
            {
                if (reader.IsCompleted) break;
                try
                {
                    await c.SendAsync([b]);
                }
                catch (SocketException)
                {
                    break;
                }
                await Task.WhenAny(reader, Task.Delay(1000));
            }
            var (bytes, _) = await reader;
            return (Ascii(bytes), watch.Elapsed);
        }

        // A slow head, and a slow body after a complete head.
        string json = """{"type":"console.log","data":"slow"}""";
        byte[] head = Encoding.ASCII.GetBytes($"POST /events/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {json.Length}\r\n\r\n");
        var headTask = TrickleAsync([], [.. head, .. Encoding.ASCII.GetBytes(json)]);
        var bodyTask = TrickleAsync(head, Encoding.ASCII.GetBytes(json));

        // Meanwhile others are served at once.
        for (int i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            Assert.Equal(200, (await http.GetResultAsync("/healthz")).Status);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), "healthz took " + watch.Elapsed + " during a slow-loris");
            await Task.Delay(300);
        }

        foreach (var (outcome, elapsed) in new[] { await headTask, await bodyTask })
        {
            Assert.True(elapsed < TimeSpan.FromSeconds(6), $"the slow client was served for {elapsed}");
            Assert.True(outcome.Length == 0 || outcome.StartsWith("HTTP/1.1 408 ", StringComparison.Ordinal),
                "a slow client gets 408 or a close, not: " + outcome);
        }
        // The slow body was never published.
        Assert.Equal(0, (await http.GetResultAsync("/events/session")).Json().GetProperty("published").GetInt64());
    }

    [Fact]
    public async Task Connections_beyond_EVENTS_MAX_CONNECTIONS_get_503()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_MAX_CONNECTIONS"] = "2" });
        await using RawConnection a = await RawConnection.OpenAsync(d);
        await using RawConnection b = await RawConnection.OpenAsync(d);
        foreach (var c in new[] { a, b })
        {
            await c.SendAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            Assert.Equal(200, (await c.ReadResponseAsync()).Status);
        }
        await using (RawConnection third = await RawConnection.OpenAsync(d))
        {
            await third.SendAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            RawResponse r = await third.ReadResponseAsync();
            Assert.Equal(503, r.Status);
        }
        // The open ones still work; once one closes, a new connection is served.
        await a.SendAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, (await a.ReadResponseAsync()).Status);
        await b.DisposeAsync();
        int status = 0;
        for (int i = 0; i < 30 && status != 200; i++)
        {
            await Task.Delay(100);
            await using RawConnection again = await RawConnection.OpenAsync(d);
            await again.SendAsync("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            status = (await again.ReadResponseAsync()).Status;
        }
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task Garbage_and_bad_framing_are_refused_and_the_daemon_keeps_serving()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        Published first = await http.PublishOkAsync("""{"type":"console.log"}""");
        string[] bad =
        [
            "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", // a TLS hello
            "GET\r\n\r\n",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            "POST /events/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "POST /events/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n",
        ];
        foreach (string request in bad)
        {
            await using RawConnection c = await RawConnection.OpenAsync(d);
            await c.SendAsync(Encoding.Latin1.GetBytes(request));
            var (bytes, _) = await c.ReadToCloseAsync(TimeSpan.FromSeconds(10));
            string answer = Ascii(bytes);
            Assert.True(answer.StartsWith("HTTP/1.1 4", StringComparison.Ordinal) || answer.StartsWith("HTTP/1.1 5", StringComparison.Ordinal) || answer.Length == 0,
                $"{request.ReplaceLineEndings("\\n")} → {answer}");
        }
        Published next = await http.PublishOkAsync("""{"type":"console.log"}""");
        Assert.Equal(first.Seq + 1, next.Seq);
    }
}
