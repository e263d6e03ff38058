using System.Buffers.Text;
using AotEvents.Http.Server;
using AotEvents.Http.Sse;

namespace AotEvents.Http.Handlers;

/// <summary>
/// <c>GET /events/stream</c> (SPEC §4): works with or without a session. Start position, first match
/// wins: <c>Last-Event-ID</c> (ignored when it does not parse), then <c>after_seq</c> /
/// <c>last_event_id</c> (400 when it does not parse), else live.
/// </summary>
internal sealed class StreamHandler(DaemonContext context)
{
    public async ValueTask HandleAsync(HttpRequest request, HttpResponse response)
    {
        QueryParameters query = QueryParameters.Parse(request.Query);
        long afterSeq = -1;
        ReadOnlySpan<byte> lastEventId = request.GetHeader("Last-Event-ID"u8).Trim((byte)' ');
        if (Utf8Parser.TryParse(lastEventId, out long headerSeq, out int consumed) &&
            consumed == lastEventId.Length && headerSeq >= 1)
        {
            afterSeq = headerSeq;
        }
        else if ((query["after_seq"] ?? query["last_event_id"]) is { } text)
        {
            if (!long.TryParse(text, System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out afterSeq))
            {
                Responses.Message(response, 400, "after_seq must be a whole number >= 0");
                return;
            }
        }

        StreamFormat format = StreamFormat.EventStream;
        switch (query["format"])
        {
            case null or "" or "sse": break;
            case "ndjson": format = StreamFormat.Ndjson; break;
            default:
                Responses.Message(response, 400, "format must be ndjson (or absent for text/event-stream)");
                return;
        }

        StreamFilter? filter = StreamFilter.Parse(query["category"], query["type"], query["source_kind"],
            query["capture_session_id"], out string? error);
        if (filter is null)
        {
            Responses.Message(response, 400, error!);
            return;
        }

        if (afterSeq < 0) afterSeq = context.Pipeline.LastSeq; // live: only what is published from now on

        response.AddHeader("Cache-Control"u8, "no-cache"u8);
        response.AddHeader("X-Accel-Buffering"u8, "no"u8);
        HttpStream stream = await response.StartStreamingAsync(200,
            format == StreamFormat.Ndjson ? "application/x-ndjson"u8 : "text/event-stream"u8).ConfigureAwait(false);
        var subscriber = new SseSubscriber(stream, context.Pipeline, filter, format, context.Config.Keepalive,
            context.Shutdown, context.StreamMetrics);
        await subscriber.RunAsync(afterSeq).ConfigureAwait(false);
    }
}
