using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using static AotEvents.Blackbox.Tests.Api;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §4: the SSE stream, byte for byte.</summary>
public sealed class StreamTests
{
    /// <summary>Reads and checks <c>retry: 3000\n</c> and the comment line that open every SSE stream; consumes them.</summary>
    internal static async Task ReadPreambleAsync(RawConnection c)
    {
        byte[] b = await c.ReadUntilAsync(all => all.Length > 12 && all.AsSpan(12).IndexOf((byte)'\n') >= 0,
            TimeSpan.FromSeconds(5), "waiting for the stream preamble");
        Assert.Equal("retry: 3000\n", Ascii(b[..12]));
        Assert.True(b[12] == (byte)':', "the line after retry must be a comment: " + Ascii(b));
        int end = 12 + b.AsSpan(12).IndexOf((byte)'\n') + 1;
        if (b.Length > end && b[end] == (byte)'\n') end++; // an empty line closing the preamble is allowed
        c.Consume(end);
    }

    /// <summary>Reads exactly <paramref name="expected"/> and checks the bytes; consumes them.</summary>
    internal static async Task ExpectBytesAsync(RawConnection c, byte[] expected, TimeSpan? timeout = null)
    {
        byte[] got;
        try
        {
            got = await c.ReadUntilAsync(all => all.Length >= expected.Length || !expected.AsSpan().StartsWith(all),
                timeout ?? TimeSpan.FromSeconds(10), "waiting for frames");
        }
        catch (TimeoutException e)
        {
            throw new Xunit.Sdk.XunitException($"expected:\n{Ascii(expected)}\n{e.Message}");
        }
        Assert.Equal(Ascii(expected), Ascii(got[..Math.Min(got.Length, expected.Length)]));
        c.Consume(expected.Length);
    }

    /// <summary>Nothing more arrives within <paramref name="wait"/>.</summary>
    internal static async Task ExpectNothingAsync(RawConnection c, TimeSpan wait)
    {
        try
        {
            byte[] extra = await c.ReadUntilAsync(all => all.Length > 0, wait);
            Assert.Fail("unexpected bytes on the stream: " + Ascii(extra));
        }
        catch (TimeoutException)
        {
        }
    }

    [Fact]
    public async Task The_stream_answers_with_SSE_headers_and_opens_at_once_without_a_session()
    {
        await using var d = await DaemonProcess.StartAsync();
        await using RawConnection c = await RawConnection.OpenAsync(d);
        await c.SendAsync("GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n");
        RawResponse head = await c.ReadHeadAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(200, head.Status);
        Assert.Equal("HTTP/1.1 200 OK", head.StatusLine);
        Assert.Matches("^text/event-stream(;.*)?$", head.Header("Content-Type"));
        Assert.Equal("no-cache", head.Header("Cache-Control"));
        Assert.Equal("no", head.Header("X-Accel-Buffering"));
        Assert.Null(head.Header("Content-Length"));
        await ReadPreambleAsync(c); // arrives with no event published
        await ExpectNothingAsync(c, TimeSpan.FromMilliseconds(300));
    }

    [Fact]
    public async Task Frames_are_id_and_data_lines_byte_for_byte_the_publish_answer()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        await http.PublishOkAsync("""{"type":"console.log","data":"before the stream opened"}""");
        await using RawConnection c = await OpenStreamAsync(d, "/events/stream");
        await ReadPreambleAsync(c);

        var published = new List<Published>
        {
            await http.PublishOkAsync("""{"type":"console.log","data":{"message":"line1\nline2","u":"é€😀"}}"""),
            await http.PublishOkAsync("""{"type":"network.request","url":"https://example.com/?a=1&b=2","source":{"kind":"extension","event":"Network.requestWillBeSent","metadata":{"request_id":"1.2"}}}"""),
            await http.PublishOkAsync("""{"type":"page.load","ts":1795233936666000,"data":[1,2.50,{"x":null}]}"""),
        };
        byte[] expected = Frames(published);
        await ExpectBytesAsync(c, expected);
        Assert.DoesNotContain("event:", Ascii(expected));
        await ExpectNothingAsync(c, TimeSpan.FromMilliseconds(300));

        // An NDJSON batch arrives as one frame per event.
        ApiResult batch = await http.PublishNdjsonAsync("{\"type\":\"console.log\",\"data\":1}\n{\"type\":\"console.log\",\"data\":2}\n");
        Assert.Equal(200, batch.Status);
        string[] lines = await JsonlLinesAsync(d.DataDir, "console", 4);
        await ExpectBytesAsync(c, Frames(lines[^2..].Select((l, i) => new Published(5 + i, Encoding.UTF8.GetBytes(l)))));
    }

    [Fact]
    public async Task Many_subscribers_get_the_same_frames()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        var streams = new List<RawConnection>();
        try
        {
            for (int i = 0; i < 6; i++)
            {
                RawConnection c = await OpenStreamAsync(d, i % 2 == 0 ? "/events/stream" : "/events/stream?category=console");
                await ReadPreambleAsync(c);
                streams.Add(c);
            }
            var published = new List<Published>();
            for (int i = 0; i < 20; i++) published.Add(await http.PublishOkAsync($"{{\"type\":\"console.log\",\"data\":{i}}}"));
            byte[] expected = Frames(published);
            await Task.WhenAll(streams.Select(c => ExpectBytesAsync(c, expected)));
        }
        finally
        {
            foreach (var c in streams) await c.DisposeAsync();
        }
    }

    private static async Task<List<Published>> PublishFiveAsync(HttpClient http)
    {
        await http.StartSessionAsync();
        var list = new List<Published>();
        for (int i = 1; i <= 5; i++) list.Add(await http.PublishOkAsync($"{{\"type\":\"console.log\",\"data\":{i}}}"));
        return list;
    }

    [Fact]
    public async Task Last_Event_ID_resumes_after_that_seq_then_goes_live_without_gap_or_duplicate()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        List<Published> p = await PublishFiveAsync(http);

        await using RawConnection c = await OpenStreamAsync(d, "/events/stream", "Last-Event-ID: 2");
        await ReadPreambleAsync(c);
        await ExpectBytesAsync(c, Frames(p[2..]));
        Published six = await http.PublishOkAsync("""{"type":"console.log","data":6}""");
        await ExpectBytesAsync(c, Frame(six));

        // The header wins over the query.
        await using RawConnection c2 = await OpenStreamAsync(d, "/events/stream?after_seq=4", "Last-Event-ID: 1");
        await ReadPreambleAsync(c2);
        await ExpectBytesAsync(c2, Frames([.. p[1..], six]));
    }

    [Theory]
    [InlineData("after_seq=3", 3)]
    [InlineData("last_event_id=3", 3)]
    [InlineData("after_seq=0", 0)]
    [InlineData("after_seq=5", 5)]
    public async Task A_query_position_resumes_after_it(string query, int after)
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        List<Published> p = await PublishFiveAsync(http);
        await using RawConnection c = await OpenStreamAsync(d, "/events/stream?" + query);
        await ReadPreambleAsync(c);
        await ExpectBytesAsync(c, Frames(p[after..]));
        Published six = await http.PublishOkAsync("""{"type":"console.log","data":6}""");
        await ExpectBytesAsync(c, Frame(six));
    }

    [Theory]
    [InlineData("after_seq=abc")]
    [InlineData("after_seq=-1")]
    [InlineData("after_seq=1.5")]
    [InlineData("after_seq=")]
    [InlineData("last_event_id=x7")]
    public async Task A_query_position_that_does_not_parse_is_400(string query)
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult r = await http.GetResultAsync("/events/stream?" + query);
        Assert.Equal(400, r.Status);
        Assert.False(string.IsNullOrEmpty(r.MessageText));
    }

    [Theory]
    [InlineData("abc", "")]
    [InlineData("-3", "")]
    [InlineData("", "")]
    [InlineData("abc", "?after_seq=0")]
    public async Task A_Last_Event_ID_that_does_not_parse_is_ignored(string header, string query)
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        List<Published> p = await PublishFiveAsync(http);
        await using RawConnection c = await OpenStreamAsync(d, "/events/stream" + query, "Last-Event-ID: " + header);
        await ReadPreambleAsync(c);
        if (query.Length > 0) await ExpectBytesAsync(c, Frames(p)); // falls through to the query
        Published six = await http.PublishOkAsync("""{"type":"console.log","data":6}""");
        await ExpectBytesAsync(c, Frame(six)); // live: nothing before it
    }

    [Fact]
    public async Task Filters_skip_silently_and_keep_global_ids_live_and_replayed()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        string[] filters =
        [
            "category=console,network",
            "type=console.log",
            "source_kind=extension",
            "capture_session_id=", // filled in below (session A)
            "category=console&source_kind=kernel_api,local_process&capture_session_id=", // session B
            "category=page&type=page.load&source_kind=local_process",
        ];

        // Session A.
        string a = await http.StartSessionAsync();
        var live = new List<RawConnection>();
        try
        {
            filters[3] += a;
            foreach (string f in filters.Take(4))
            {
                RawConnection c = await OpenStreamAsync(d, "/events/stream?" + f);
                await ReadPreambleAsync(c);
                live.Add(c);
            }
            Published e1 = await http.PublishOkAsync("""{"type":"console.log","source":{"kind":"extension"},"data":1}""");
            Published e2 = await http.PublishOkAsync("""{"type":"network.request","data":2}""");
            Published e3 = await http.PublishOkAsync("""{"type":"page.load","source":{"kind":"local_process"},"data":3}""");
            Published e4 = await http.PublishOkAsync("""{"type":"console.error","data":4}""");
            ApiResult stop = await http.PostResultAsync("/events/stop");
            long e5Seq = stop.Json().GetProperty("last_seq").GetInt64();
            string systemLine = Assert.Single(await JsonlLinesAsync(d.DataDir, "system", 1));
            var e5 = new Published(e5Seq, Encoding.UTF8.GetBytes(systemLine));

            // Session B.
            string b = await http.StartSessionAsync();
            filters[4] += b;
            Published e6 = await http.PublishOkAsync("""{"type":"console.log","source":{"kind":"extension"},"data":6}""");
            Published e7 = await http.PublishOkAsync("""{"type":"network.response","source":{"kind":"extension"},"data":7}""");
            Published e8 = await http.PublishOkAsync("""{"type":"console.log","source":{"kind":"local_process"},"data":8}""");
            Published[][] expected =
            [
                [e1, e2, e4, e6, e7, e8],
                [e1, e6, e8],
                [e1, e6, e7],
                [e1, e2, e3, e4, e5],
                [e8],
                [e3],
            ];

            for (int i = 0; i < live.Count; i++)
            {
                await ExpectBytesAsync(live[i], Frames(expected[i]));
                await ExpectNothingAsync(live[i], TimeSpan.FromMilliseconds(100));
            }
            for (int i = 0; i < filters.Length; i++)
            {
                await using RawConnection replay = await OpenStreamAsync(d, "/events/stream?after_seq=0&" + filters[i]);
                await ReadPreambleAsync(replay);
                await ExpectBytesAsync(replay, Frames(expected[i]));
                await ExpectNothingAsync(replay, TimeSpan.FromMilliseconds(100));
                // Resuming with a filter is exact: after the first match, the rest.
                await using RawConnection resume = await OpenStreamAsync(d, "/events/stream?" + filters[i], $"Last-Event-ID: {expected[i][0].Seq}");
                await ReadPreambleAsync(resume);
                await ExpectBytesAsync(resume, Frames(expected[i][1..]));
            }
        }
        finally
        {
            foreach (var c in live) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task Format_ndjson_gives_the_envelopes_as_lines()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        List<Published> p = await PublishFiveAsync(http);
        await using RawConnection c = await OpenStreamAsync(d, "/events/stream?after_seq=2&format=ndjson");
        byte[] expected = p[2..].SelectMany(e => (byte[])[.. e.Envelope, (byte)'\n']).ToArray();
        await ExpectBytesAsync(c, expected);
        Published six = await http.PublishOkAsync("""{"type":"console.log","data":6}""");
        await ExpectBytesAsync(c, [.. six.Envelope, (byte)'\n']);
        await ExpectNothingAsync(c, TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task A_keepalive_comment_is_sent_after_EVENTS_KEEPALIVE_without_frames()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_KEEPALIVE"] = "1s" });
        await using RawConnection c = await OpenStreamAsync(d, "/events/stream");
        await ReadPreambleAsync(c);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await ExpectBytesAsync(c, ":\n"u8.ToArray(), TimeSpan.FromSeconds(4));
        Assert.True(watch.Elapsed > TimeSpan.FromMilliseconds(500), "keepalive came too early: " + watch.Elapsed);
        await ExpectBytesAsync(c, ":\n"u8.ToArray(), TimeSpan.FromSeconds(4));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(6), "two keepalives took " + watch.Elapsed);
    }

    [Fact]
    public async Task Streams_end_cleanly_after_the_last_event_on_SIGTERM()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        await using RawConnection sse = await OpenStreamAsync(d, "/events/stream");
        await using RawConnection nd = await OpenStreamAsync(d, "/events/stream?format=ndjson");
        await ReadPreambleAsync(sse);
        var published = new List<Published>();
        for (int i = 0; i < 50; i++) published.Add(await http.PublishOkAsync($"{{\"type\":\"console.log\",\"data\":{i}}}"));
        d.Signal("TERM");

        var (sseBytes, sseClean) = await sse.ReadToCloseAsync(TimeSpan.FromSeconds(15));
        var (ndBytes, ndClean) = await nd.ReadToCloseAsync(TimeSpan.FromSeconds(15));
        Assert.True(sseClean, "the SSE stream was reset instead of ended");
        Assert.True(ndClean, "the NDJSON stream was reset instead of ended");
        Assert.Equal(Ascii(Frames(published)), Ascii(sseBytes));
        Assert.Equal(string.Concat(published.Select(p => p.Text + "\n")), Ascii(ndBytes));
        Assert.Equal(0, await d.StopAsync());
    }

    [Fact]
    public async Task Replay_older_than_the_ring_is_served_from_the_files_without_loss()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_RING_CAPACITY"] = "8" });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        var published = new List<Published>();
        string[] types = ["console.log", "network.request", "page.load"];
        for (int i = 0; i < 60; i++)
            published.Add(await http.PublishOkAsync($"{{\"type\":\"{types[i % 3]}\",\"data\":{i}}}", i == 59 ? "?ack=disk" : ""));

        await using RawConnection all = await OpenStreamAsync(d, "/events/stream?after_seq=0");
        await ReadPreambleAsync(all);
        await ExpectBytesAsync(all, Frames(published)); // merged by seq across categories, no `dropped` frame
        await using RawConnection mid = await OpenStreamAsync(d, "/events/stream", "Last-Event-ID: 17");
        await ReadPreambleAsync(mid);
        await ExpectBytesAsync(mid, Frames(published[17..]));
        await using RawConnection filtered = await OpenStreamAsync(d, "/events/stream?after_seq=0&category=network");
        await ReadPreambleAsync(filtered);
        await ExpectBytesAsync(filtered, Frames(published.Where((_, i) => i % 3 == 1)));

        // Handed over to live delivery with no gap and no duplicate.
        Published next = await http.PublishOkAsync("""{"type":"network.request","data":"live"}""");
        await ExpectBytesAsync(all, Frame(next));
        await ExpectBytesAsync(mid, Frame(next));
        await ExpectBytesAsync(filtered, Frame(next));
        using var metricsClient = d.CreateClient();
        Assert.True(MetricsTests.Value((await metricsClient.GetResultAsync("/metrics")).Text, "replayed") > 0, "replays from the files are counted");
    }

    [Fact]
    public async Task Only_events_deleted_by_retention_are_reported_as_one_dropped_frame()
    {
        // Tiny segments and disk cap: retention deletes the oldest rotated files while we publish.
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string>
        {
            ["EVENTS_RING_CAPACITY"] = "4",
            ["EVENTS_SEGMENT_BYTES"] = "4096",
            ["EVENTS_MAX_DISK_BYTES"] = "16384",
        });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        var published = new List<Published>();
        string pad = new('r', 200);
        for (int i = 0; i < 300; i++)
            published.Add(await http.PublishOkAsync($"{{\"type\":\"console.log\",\"data\":{{\"i\":{i},\"pad\":\"{pad}\"}}}}", i == 299 ? "?ack=disk" : ""));
        long onDisk = Directory.GetFiles(d.DataDir, "*.log").Sum(f => new FileInfo(f).Length);
        Assert.True(onDisk <= 16384 + 4096, $"retention keeps the files near EVENTS_MAX_DISK_BYTES: {onDisk} bytes");

        // after_seq=0: everything still retained, from the oldest retained event, with no `dropped` frame.
        await using RawConnection all = await OpenStreamAsync(d, "/events/stream?after_seq=0");
        await ReadPreambleAsync(all);
        byte[] first = await all.ReadUntilAsync(b => b.AsSpan().IndexOf("\n\n"u8) >= 0);
        string firstFrame = Ascii(first);
        Assert.StartsWith("id: ", firstFrame);
        long oldest = long.Parse(firstFrame[4..firstFrame.IndexOf('\n')]);
        Assert.InRange(oldest, 2, 299);
        await ExpectBytesAsync(all, Frames(published[(int)(oldest - 1)..]));

        // A position before that: one `dropped` frame for exactly the missing range, then the rest.
        await using RawConnection resume = await OpenStreamAsync(d, "/events/stream", "Last-Event-ID: 1");
        await ReadPreambleAsync(resume);
        byte[] dropped = Encoding.ASCII.GetBytes($"event: dropped\ndata: {{\"from_seq\":2,\"to_seq\":{oldest - 1},\"count\":{oldest - 2}}}\n\n");
        await ExpectBytesAsync(resume, [.. dropped, .. Frames(published[(int)(oldest - 1)..])]);
        Published next = await http.PublishOkAsync("""{"type":"console.log","data":"live"}""");
        await ExpectBytesAsync(resume, Frame(next));
        await ExpectBytesAsync(all, Frame(next));
    }

    [Fact]
    public async Task A_subscriber_that_falls_behind_the_ring_catches_up_and_does_not_slow_publishers()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_RING_CAPACITY"] = "64" });
        using var http = d.CreateClient();
        await http.StartSessionAsync();

        // A subscriber with a tiny receive window that does not read while events are published.
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, d.Port));
        await socket.SendAsync("GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), SocketFlags.None);
        // And a subscriber that keeps up: it must not be held back by the slow one.
        await using RawConnection fast = await OpenStreamAsync(d, "/events/stream");
        await ReadPreambleAsync(fast);
        var fastDone = fast.ReadUntilContainsAsync("id: 2000\n", TimeSpan.FromSeconds(30));
        await Task.Delay(300);

        string pad = new('p', 900);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int batch = 0; batch < 8; batch++)
        {
            string body = string.Concat(Enumerable.Range(0, 250).Select(i => $"{{\"type\":\"console.log\",\"data\":{{\"i\":{batch * 250 + i},\"pad\":\"{pad}\"}}}}\n"));
            ApiResult r = await http.PublishNdjsonAsync(body, batch == 7 ? "?ack=disk" : "");
            Assert.Equal(200, r.Status);
        }
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), "publishing 2000 events took " + watch.Elapsed);
        string[] lines = await JsonlLinesAsync(d.DataDir, "console", 2000, TimeSpan.Zero);
        Assert.Equal(2000, lines.Length);
        byte[] fastBytes = await fastDone;
        Assert.StartsWith(string.Concat(lines.Select((l, i) => $"id: {i + 1}\ndata: {l}\n\n")), Ascii(fastBytes) + "\n");

        // Now read everything: every event, in order, no `dropped` frame.
        var received = new MemoryStream();
        byte[] buffer = new byte[64 * 1024];
        string expectedTail = "id: 2000\ndata: " + lines[^1] + "\n\n";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            Assert.True(n > 0, "the daemon closed the slow subscriber's stream");
            received.Write(buffer, 0, n);
            if (received.Length >= expectedTail.Length && Encoding.UTF8.GetString(received.GetBuffer(), 0, (int)received.Length).EndsWith(expectedTail, StringComparison.Ordinal)) break;
        }
        socket.Dispose();
        string text = Encoding.UTF8.GetString(received.ToArray());
        int bodyStart = text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4;
        string body2 = text[bodyStart..];
        Assert.DoesNotContain("event: dropped", body2);
        string frames = string.Concat(lines.Select((l, i) => $"id: {i + 1}\ndata: {l}\n\n"));
        Assert.EndsWith(frames, body2);
        Assert.StartsWith("retry: 3000\n:", body2);
    }

    [Fact]
    public async Task The_stream_counts_in_metrics_while_connected()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await using (RawConnection c = await OpenStreamAsync(d, "/events/stream"))
        {
            await ReadPreambleAsync(c);
            string metrics = (await http.GetResultAsync("/metrics")).Text;
            Assert.Equal(1, MetricsTests.Value(metrics, "subscribers"));
        }
        double subscribers = 1;
        for (int i = 0; i < 40 && subscribers != 0; i++)
        {
            await Task.Delay(100);
            subscribers = MetricsTests.Value((await http.GetResultAsync("/metrics")).Text, "subscribers");
        }
        Assert.Equal(0, subscribers);
    }

    internal static JsonElement Parse(byte[] json) => JsonDocument.Parse(json).RootElement;
}
