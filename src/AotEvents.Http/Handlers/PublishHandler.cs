using AotEvents.Http.Server;
using AotEvents.Pipeline;

namespace AotEvents.Http.Handlers;

/// <summary>
/// <c>POST /events/publish</c> (SPEC §3): one JSON event or an NDJSON batch, acknowledged at the
/// level the caller asks for (<c>memory</c>, <c>disk</c>, <c>s2</c>), reported in <c>X-Ack</c>.
/// </summary>
internal sealed class PublishHandler(DaemonContext context)
{
    /// <summary>How long an ack=disk or ack=s2 publisher waits before it is told the level was not reached.</summary>
    private static readonly TimeSpan AckTimeout = TimeSpan.FromSeconds(30);

    private enum AckLevel { Memory, Disk, S2 }

    public async ValueTask HandleAsync(HttpRequest request, HttpResponse response)
    {
        AckLevel ack = AckLevel.Memory;
        if (!request.Query.IsEmpty)
        {
            string? value = QueryParameters.Parse(request.Query)["ack"];
            switch (value)
            {
                case null or "" or "memory": break;
                case "disk": ack = AckLevel.Disk; break;
                case "s2": ack = AckLevel.S2; break;
                default:
                    Responses.Message(response, 400, "ack must be memory, disk or s2");
                    return;
            }
        }
        if (ack == AckLevel.S2 && context.Shipper is null)
        {
            Responses.Message(response, 503, "ack=s2 needs S2 shipping, which is not configured (S2_BASIN, S2_ACCESS_TOKEN)");
            return;
        }

        bool batch;
        ReadOnlySpan<byte> contentType = MediaType(request.GetHeader("Content-Type"u8));
        if (contentType.SequenceEqual("application/x-ndjson"u8)) batch = true;
        else if (IsJsonLike(contentType)) batch = false;
        else
        {
            Responses.Message(response, 415, "Content-Type must be application/json or application/x-ndjson");
            return;
        }

        PublishOutcome outcome = batch
            ? context.Pipeline.PublishBatch(request.Body.Span)
            : context.Pipeline.Publish(request.Body.Span);
        if (!outcome.Succeeded)
        {
            Responses.Message(response, outcome.Status, outcome.Message!);
            return;
        }

        if (ack == AckLevel.Disk)
        {
            Task durable = context.Pipeline.Writer.WaitDurableAsync(outcome.LastSeq);
            if (!durable.IsCompleted && !await CompletesUnlessDiskFails(durable).ConfigureAwait(false))
            {
                Responses.Message(response, 507, $"accepted as seq {outcome.LastSeq} but not yet on disk: " +
                    (context.Pipeline.Writer.Fault?.Message ?? "fsync did not complete in time"));
                return;
            }
        }
        else if (ack == AckLevel.S2)
        {
            Task acked = context.Shipper!.WaitAckedAsync(outcome.LastSeq, context.Shutdown);
            if (!acked.IsCompleted && !await Completes(acked).ConfigureAwait(false))
            {
                Responses.Message(response, 504, $"accepted as seq {outcome.LastSeq} but S2 has not acknowledged it yet; it will be shipped");
                return;
            }
        }

        response.AddHeader("X-Ack"u8, ack switch
        {
            AckLevel.Disk => "disk"u8,
            AckLevel.S2 => "s2"u8,
            _ => "memory"u8,
        });
        if (batch)
        {
            response.Write(200, Responses.Json, ApiJson.BatchResult(outcome.Accepted, outcome.FirstSeq, outcome.LastSeq));
        }
        else
        {
            response.Write(200, Responses.Json, outcome.Envelope.Json);
        }
    }

    /// <summary>
    /// Waits for the fsync, but answers at once (false) when the writer reports a failure meanwhile:
    /// a disk that filled up should not keep an ack=disk publisher waiting for the whole timeout.
    /// </summary>
    private async Task<bool> CompletesUnlessDiskFails(Task durable)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (waited.Elapsed < AckTimeout)
        {
            if (context.Pipeline.Writer.Fault is not null) return false;
            try
            {
                await durable.WaitAsync(TimeSpan.FromMilliseconds(250)).ConfigureAwait(false);
                return true;
            }
            catch (TimeoutException)
            {
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
        }
        return false;
    }

    private static async Task<bool> Completes(Task task)
    {
        try
        {
            await task.WaitAsync(AckTimeout).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is TimeoutException or ObjectDisposedException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// A single event is JSON whatever the client called it: no Content-Type, application/json (or
    /// <c>+json</c>), and what <c>curl -d</c> sends by default (form-urlencoded) or text/plain. The body is
    /// validated as JSON either way; other media types (multipart, binary) are refused with 415.
    /// </summary>
    private static bool IsJsonLike(ReadOnlySpan<byte> mediaType) =>
        mediaType.IsEmpty || mediaType.SequenceEqual("application/json"u8) || mediaType.EndsWith("+json"u8) ||
        System.Text.Ascii.EqualsIgnoreCase(mediaType, "application/x-www-form-urlencoded"u8) ||
        System.Text.Ascii.EqualsIgnoreCase(mediaType, "text/plain"u8);

    /// <summary>The media type of a Content-Type value, lower-cased parameters and spaces ignored.</summary>
    private static ReadOnlySpan<byte> MediaType(ReadOnlySpan<byte> header)
    {
        int semi = header.IndexOf((byte)';');
        ReadOnlySpan<byte> type = (semi < 0 ? header : header[..semi]).Trim((byte)' ');
        if (System.Text.Ascii.EqualsIgnoreCase(type, "application/json"u8)) return "application/json"u8;
        if (System.Text.Ascii.EqualsIgnoreCase(type, "application/x-ndjson"u8)) return "application/x-ndjson"u8;
        return type;
    }
}
