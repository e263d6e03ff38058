using System.Buffers;
using System.Globalization;
using AotEvents.Archive;
using AotEvents.Events;
using AotEvents.Http.Server;

namespace AotEvents.Http.Handlers;

/// <summary>
/// <c>GET /telemetry/events</c> (SPEC §7): a page of archived envelopes as a JSON array, with
/// <c>X-Has-More</c> and <c>X-Next-Offset</c>. Parameters that do not parse are 400; a failing
/// store is 502.
/// </summary>
internal sealed class ArchiveHandler(DaemonContext context)
{
    public async ValueTask HandleAsync(HttpRequest request, HttpResponse response)
    {
        QueryParameters q = QueryParameters.Parse(request.Query);
        if (!TryParseQuery(q, out ArchiveQuery? query, out string? error))
        {
            Responses.Message(response, 400, error!);
            return;
        }

        ArchivePage page;
        try
        {
            page = await context.Archive.ReadAsync(query!, context.Shutdown).ConfigureAwait(false);
        }
        catch (ArchiveUnavailableException e)
        {
            Responses.Message(response, 502, "the archive could not be read: " + e.Message);
            return;
        }

        var body = new ArrayBufferWriter<byte>(256);
        body.Write("["u8);
        for (int i = 0; i < page.Envelopes.Count; i++)
        {
            if (i > 0) body.Write(","u8);
            body.Write(page.Envelopes[i].Span);
        }
        body.Write("]"u8);
        response.AddHeader("X-Has-More"u8, page.HasMore ? "true"u8 : "false"u8);
        if (page.HasMore && page.NextOffset is long next)
            response.AddHeader("X-Next-Offset"u8, System.Text.Encoding.ASCII.GetBytes(next.ToString(CultureInfo.InvariantCulture)));
        response.Write(200, Responses.Json, body.WrittenSpan);
    }

    internal static bool TryParseQuery(QueryParameters q, out ArchiveQuery? query, out string? error)
    {
        query = null;
        long? offset = null;
        if (q["offset"] is { Length: > 0 } offsetText)
        {
            if (!long.TryParse(offsetText, NumberStyles.None, CultureInfo.InvariantCulture, out long o))
            {
                error = "offset must be a whole number (the X-Next-Offset of the previous page)";
                return false;
            }
            offset = o;
        }
        long? since = null, until = null;
        if (q["since"] is { Length: > 0 } sinceText)
        {
            if (!TryParseTime(sinceText, out long t))
            {
                error = "since must be RFC 3339 or Unix milliseconds";
                return false;
            }
            since = t;
        }
        if (q["until"] is { Length: > 0 } untilText)
        {
            if (!TryParseTime(untilText, out long t))
            {
                error = "until must be RFC 3339 or Unix milliseconds";
                return false;
            }
            until = t;
        }
        int mask = 0;
        foreach (string value in q.All("category"))
        {
            foreach (string name in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!EventVocabulary.TryParseCategory(name, out EventCategory c))
                {
                    error = $"unknown category: {name}";
                    return false;
                }
                mask |= 1 << (int)c;
            }
        }
        if (mask == 0) mask = EventVocabulary.AllCategoriesMask;
        int limit = 100;
        if (q["limit"] is { Length: > 0 } limitText)
        {
            if (!long.TryParse(limitText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
            {
                error = "limit must be a whole number";
                return false;
            }
            limit = (int)Math.Clamp(l, 1, 1000);
        }
        query = new ArchiveQuery
        {
            Offset = offset,
            SinceMicros = offset is null ? since : null,
            UntilMicros = until,
            CategoryMask = mask,
            CaptureSessionId = q["capture_session_id"] is { Length: > 0 } id ? id : null,
            Limit = limit,
        };
        error = null;
        return true;
    }

    /// <summary>RFC 3339 or Unix milliseconds → Unix microseconds.</summary>
    private static bool TryParseTime(string text, out long micros)
    {
        micros = 0;
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long ms))
        {
            if (ms > long.MaxValue / 1000) return false;
            micros = ms * 1000;
            return true;
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out DateTimeOffset t) &&
            text.Contains('T', StringComparison.OrdinalIgnoreCase))
        {
            micros = (t.UtcTicks - DateTime.UnixEpoch.Ticks) / 10;
            return true;
        }
        return false;
    }
}
