using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text.Json;
using AotEvents;
using AotEvents.Events;
using AotEvents.Pipeline;

// The ASP.NET Core peer of the load harness (bench/load/run.sh): the daemon's HTTP surface for the
// paths the harness measures, written as an idiomatic minimal API over the SAME publish work
// (AotEvents.Core's EventPipeline: parse, sequence, envelope, ring, JSONL writer).
//
//   POST /events/start    → pipeline.StartSession(body), 201 with the session
//   POST /events/publish  → application/json: pipeline.Publish(body), 200 with the envelope bytes;
//                           application/x-ndjson: pipeline.PublishBatch(body), 200 {"accepted",…}
//   GET  /events/stream   → SSE from the pipeline's RingBuffer (live, Last-Event-ID or after_seq)
//   GET  /healthz         → 200
//
// Not a product: no auth, CORS, stream filters, ack=disk|s2 or replay from the JSONL files (a
// subscriber that falls behind the ring gets an `event: dropped` frame instead).
//
// Usage: aspnetpeer [--port N] [--data-dir DIR]   (or PORT / EVENTS_DATA_DIR); listens on 127.0.0.1 only.

int port = 10002;
string? dataDir = Environment.GetEnvironmentVariable("EVENTS_DATA_DIR");
if (Environment.GetEnvironmentVariable("PORT") is { Length: > 0 } portText) port = int.Parse(portText, CultureInfo.InvariantCulture);
for (int i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--port": port = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--data-dir": dataDir = args[i + 1]; break;
        default:
            Console.Error.WriteLine($"unknown option {args[i]} (allowed: --port N, --data-dir DIR)");
            return 2;
    }
}
bool ownDataDir = string.IsNullOrEmpty(dataDir);
if (ownDataDir) dataDir = Directory.CreateTempSubdirectory("aspnetpeer-").FullName;

EventPipeline pipeline = EventPipeline.Open(new EventPipelineOptions { DataDir = dataDir! },
    message => Console.Error.WriteLine(message));

// Options are parsed above, not by the host.
WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.Listen(IPAddress.Loopback, port);
    kestrel.AddServerHeader = false;
    kestrel.Limits.MaxRequestBodySize = 16 * 1024 * 1024;
});
WebApplication app = builder.Build();
app.Lifetime.ApplicationStopped.Register(() =>
{
    pipeline.Dispose();
    if (ownDataDir) Directory.Delete(dataDir!, recursive: true);
});

app.MapGet("/healthz", () => Results.Text("ok\n"));

app.MapPost("/events/start", async (HttpContext context) =>
{
    SessionOutcome outcome = await PeerBody.ReadAsync(context.Request.BodyReader, SessionResult, pipeline).ConfigureAwait(false);
    if (outcome.Session is null)
    {
        await PeerResponses.MessageAsync(context.Response, outcome.Status, outcome.Message!).ConfigureAwait(false);
        return;
    }
    await PeerResponses.JsonAsync(context.Response, outcome.Status, ApiJson.Session(outcome.Session)).ConfigureAwait(false);
});

app.MapPost("/events/publish", async (HttpContext context) =>
{
    string? contentType = context.Request.ContentType;
    bool batch;
    if (string.IsNullOrEmpty(contentType) || contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)) batch = false;
    else if (contentType.StartsWith("application/x-ndjson", StringComparison.OrdinalIgnoreCase)) batch = true;
    else
    {
        await PeerResponses.MessageAsync(context.Response, 415, "Content-Type must be application/json or application/x-ndjson").ConfigureAwait(false);
        return;
    }

    Func<(EventPipeline, ReadOnlyMemory<byte>), PublishOutcome> consume = batch ? PublishBatch : Publish;
    PublishOutcome outcome = await PeerBody.ReadAsync(context.Request.BodyReader, consume, pipeline).ConfigureAwait(false);
    if (!outcome.Succeeded)
    {
        await PeerResponses.MessageAsync(context.Response, outcome.Status, outcome.Message!).ConfigureAwait(false);
        return;
    }
    context.Response.Headers["X-Ack"] = "memory";
    if (batch)
    {
        await PeerResponses.JsonAsync(context.Response, 200, ApiJson.BatchResult(outcome.Accepted, outcome.FirstSeq, outcome.LastSeq)).ConfigureAwait(false);
    }
    else
    {
        await PeerResponses.JsonAsync(context.Response, 200, outcome.Envelope.JsonMemory).ConfigureAwait(false);
    }
});

app.MapGet("/events/stream", (HttpContext context) => SseStream.RunAsync(context, pipeline));

await app.RunAsync().ConfigureAwait(false);
return 0;

static SessionOutcome SessionResult((EventPipeline Pipeline, ReadOnlyMemory<byte> Body) a) => a.Pipeline.StartSession(a.Body.Span);
static PublishOutcome Publish((EventPipeline Pipeline, ReadOnlyMemory<byte> Body) a) => a.Pipeline.Publish(a.Body.Span);
static PublishOutcome PublishBatch((EventPipeline Pipeline, ReadOnlyMemory<byte> Body) a) => a.Pipeline.PublishBatch(a.Body.Span);

/// <summary>Reads a whole request body from Kestrel's pipe and hands it to a synchronous consumer.</summary>
internal static class PeerBody
{
    public static async ValueTask<T> ReadAsync<T>(PipeReader reader,
        Func<(EventPipeline, ReadOnlyMemory<byte>), T> consume, EventPipeline pipeline)
    {
        ReadResult result;
        while (true)
        {
            result = await reader.ReadAsync().ConfigureAwait(false);
            if (result.IsCompleted || result.IsCanceled) break;
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
        ReadOnlySequence<byte> body = result.Buffer;
        try
        {
            if (body.IsSingleSegment) return consume((pipeline, body.First));
            int length = checked((int)body.Length);
            byte[] copy = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                body.CopyTo(copy);
                return consume((pipeline, copy.AsMemory(0, length)));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(copy);
            }
        }
        finally
        {
            reader.AdvanceTo(body.End);
        }
    }
}

internal static class PeerResponses
{
    public static async Task JsonAsync(HttpResponse response, int status, ReadOnlyMemory<byte> json)
    {
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = json.Length;
        await response.BodyWriter.WriteAsync(json).ConfigureAwait(false);
    }

    public static Task MessageAsync(HttpResponse response, int status, string message) =>
        JsonAsync(response, status, ApiJson.Message(message));
}

/// <summary>
/// <c>GET /events/stream</c>: frames <c>id: N\ndata: &lt;envelope&gt;\n\n</c> straight from the ring,
/// flushed once per drained batch; waits on <see cref="RingBuffer.WaitAsync"/>; a <c>:</c> keepalive
/// after 15 s without a frame.
/// </summary>
internal static class SseStream
{
    private static readonly TimeSpan Keepalive = TimeSpan.FromSeconds(15);
    private const int MaxFramesPerFlush = 256;

    public static async Task RunAsync(HttpContext context, EventPipeline pipeline)
    {
        long afterSeq = -1;
        string? lastEventId = context.Request.Headers["Last-Event-ID"];
        if (long.TryParse(lastEventId, NumberStyles.None, CultureInfo.InvariantCulture, out long headerSeq) && headerSeq >= 1)
        {
            afterSeq = headerSeq;
        }
        else if ((context.Request.Query["after_seq"].FirstOrDefault() ?? context.Request.Query["last_event_id"].FirstOrDefault()) is { } text)
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out afterSeq))
            {
                await PeerResponses.MessageAsync(context.Response, 400, "after_seq must be a whole number >= 0").ConfigureAwait(false);
                return;
            }
        }
        RingBuffer ring = pipeline.Ring;
        if (afterSeq < 0) afterSeq = ring.LastSeq;

        HttpResponse response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        PipeWriter writer = response.BodyWriter;
        CancellationToken aborted = context.RequestAborted;
        try
        {
            writer.Write("retry: 3000\n: stream open\n\n"u8);
            await writer.FlushAsync(aborted).ConfigureAwait(false);
            while (!aborted.IsCancellationRequested)
            {
                int frames = 0;
                while (frames < MaxFramesPerFlush)
                {
                    int got = ring.TryGet(afterSeq + 1, out Envelope envelope);
                    if (got == 0) break;
                    if (got < 0)
                    {
                        long oldest = ring.OldestSeq;
                        WriteDropped(writer, afterSeq + 1, oldest - 1);
                        afterSeq = Math.Max(afterSeq, oldest - 1);
                        frames++;
                        continue;
                    }
                    WriteFrame(writer, in envelope);
                    afterSeq = envelope.Seq;
                    frames++;
                }
                if (frames > 0)
                {
                    FlushResult flushed = await writer.FlushAsync(aborted).ConfigureAwait(false);
                    if (flushed.IsCompleted || flushed.IsCanceled) return;
                    continue;
                }
                Task wait = ring.WaitAsync(afterSeq);
                if (wait.IsCompleted) continue;
                try
                {
                    await wait.WaitAsync(Keepalive, aborted).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    writer.Write(":\n\n"u8);
                    await writer.FlushAsync(aborted).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // the subscriber went away
        }
    }

    private static void WriteFrame(PipeWriter writer, in Envelope envelope)
    {
        ReadOnlySpan<byte> json = envelope.Json;
        Span<byte> span = writer.GetSpan(4 + 20 + 7 + json.Length + 2);
        "id: "u8.CopyTo(span);
        Utf8Formatter.TryFormat(envelope.Seq, span[4..], out int digits);
        int at = 4 + digits;
        "\ndata: "u8.CopyTo(span[at..]);
        at += 7;
        json.CopyTo(span[at..]);
        at += json.Length;
        span[at++] = (byte)'\n';
        span[at++] = (byte)'\n';
        writer.Advance(at);
    }

    private static void WriteDropped(PipeWriter writer, long from, long to)
    {
        byte[] json = ApiJson.Dropped(from, to);
        writer.Write("event: dropped\ndata: "u8);
        writer.Write(json);
        writer.Write("\n\n"u8);
    }
}
