using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>An HTTP answer read through HttpClient, body kept as bytes.</summary>
public sealed class ApiResult
{
    public required int Status { get; init; }
    public required byte[] Body { get; init; }
    public required HttpResponseMessage Message { get; init; }

    public string Text => Encoding.UTF8.GetString(Body);

    public JsonElement Json()
    {
        using var doc = JsonDocument.Parse(Body);
        return doc.RootElement.Clone();
    }

    /// <summary>The <c>message</c> of a <c>{"message":"…"}</c> answer.</summary>
    public string MessageText => Json().GetProperty("message").GetString()!;

    public string? Header(string name)
    {
        if (Message.Headers.TryGetValues(name, out var values)) return string.Join(", ", values);
        if (Message.Content.Headers.TryGetValues(name, out values)) return string.Join(", ", values);
        return null;
    }

    public override string ToString() => $"{Status} {Text}";
}

public static class Api
{
    public static async Task<ApiResult> SendAsync(this HttpClient client, HttpMethod method, string path,
        byte[]? body = null, string? contentType = null, IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            if (contentType is not null) request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        foreach (var (k, v) in headers ?? []) request.Headers.TryAddWithoutValidation(k, v);
        HttpResponseMessage response = await client.SendAsync(request);
        byte[] bytes = await response.Content.ReadAsByteArrayAsync();
        return new ApiResult { Status = (int)response.StatusCode, Body = bytes, Message = response };
    }

    public static Task<ApiResult> GetResultAsync(this HttpClient client, string path) => client.SendAsync(HttpMethod.Get, path);

    public static Task<ApiResult> PostResultAsync(this HttpClient client, string path, string? json = null) =>
        client.SendAsync(HttpMethod.Post, path, json is null ? null : Encoding.UTF8.GetBytes(json), json is null ? null : "application/json");

    public static Task<ApiResult> PublishAsync(this HttpClient client, string json, string query = "") =>
        client.SendAsync(HttpMethod.Post, "/events/publish" + query, Encoding.UTF8.GetBytes(json), "application/json");

    public static Task<ApiResult> PublishBytesAsync(this HttpClient client, byte[] body, string contentType = "application/json", string query = "") =>
        client.SendAsync(HttpMethod.Post, "/events/publish" + query, body, contentType);

    public static Task<ApiResult> PublishNdjsonAsync(this HttpClient client, string ndjson, string query = "") =>
        client.SendAsync(HttpMethod.Post, "/events/publish" + query, Encoding.UTF8.GetBytes(ndjson), "application/x-ndjson");

    /// <summary>Publishes and asserts 200; returns the envelope bytes and seq.</summary>
    public static async Task<Published> PublishOkAsync(this HttpClient client, string json, string query = "")
    {
        ApiResult r = await client.PublishAsync(json, query);
        Assert.True(r.Status == 200, $"publish {json} → {r}");
        return new Published(r.Json().GetProperty("seq").GetInt64(), r.Body);
    }

    /// <summary>POST /events/start, asserting 201; returns the session id.</summary>
    public static async Task<string> StartSessionAsync(this HttpClient client, string? body = null)
    {
        ApiResult r = await client.PostResultAsync("/events/start", body);
        Assert.True(r.Status == 201, "start → " + r);
        return r.Json().GetProperty("id").GetString()!;
    }

    /// <summary>The SSE frame the daemon must write for an envelope.</summary>
    public static byte[] Frame(Published p) =>
        [.. Encoding.ASCII.GetBytes($"id: {p.Seq}\ndata: "), .. p.Envelope, .. "\n\n"u8];

    public static byte[] Frames(IEnumerable<Published> ps) => ps.SelectMany(Frame).ToArray();

    public static string Ascii(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    /// <summary>Lines of <c>&lt;data&gt;/&lt;category&gt;.log</c>, waiting (bounded) until there are at least <paramref name="atLeast"/>.</summary>
    public static async Task<string[]> JsonlLinesAsync(string dataDir, string category, int atLeast, TimeSpan? timeout = null)
    {
        string path = Path.Combine(dataDir, category + ".log");
        DateTime until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            string text = File.Exists(path) ? await File.ReadAllTextAsync(path) : "";
            bool whole = text.Length == 0 || text[^1] == '\n'; // a line being written may be seen half
            string[] lines = text.Length == 0 ? [] : text.Split('\n')[..^1];
            bool expired = DateTime.UtcNow > until;
            if (whole && (lines.Length >= atLeast || expired)) return lines;
            if (!whole && expired)
                Assert.Fail($"{path} does not end with a newline: …{text[Math.Max(0, text.Length - 200)..]}");
            await Task.Delay(50);
        }
    }

    /// <summary>Reads the answer head of a stream request and checks it is 200.</summary>
    public static async Task<RawConnection> OpenStreamAsync(DaemonProcess daemon, string pathAndQuery, params string[] extraHeaders)
    {
        RawConnection c = await RawConnection.OpenAsync(daemon);
        string headers = string.Concat(extraHeaders.Select(h => h + "\r\n"));
        await c.SendAsync($"GET {pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{headers}\r\n");
        RawResponse head = await c.ReadHeadAsync();
        Assert.True(head.Status == 200, $"GET {pathAndQuery} → {head.StatusLine} {Ascii(c.Buffered.ToArray())}");
        return c;
    }
}

public sealed record Published(long Seq, byte[] Envelope)
{
    public string Text => Encoding.UTF8.GetString(Envelope);
}
