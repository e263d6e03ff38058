using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace S2StandIn;

// The HTTP face of the stand-in: routing, auth, fault injection, and the handlers of the basin-scoped
// operations of openapi.json (streams, records, tail). Error shapes follow the spec: ErrorInfo
// {code,message} with the status of the code, 412 AppendConditionFailed, 416 TailResponse.
public sealed partial class S2StandIn
{
    private const int MaxBatchRecords = 1000;
    private const int MaxBatchBytes = 1024 * 1024;
    private const string JsonType = "application/json";

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly byte[] DefaultStreamConfig = Encoding.UTF8.GetBytes(
        """{"storage_class":"express","retention_policy":{"age":604800},"timestamping":{"mode":"client-prefer","uncapped":false},"delete_on_empty":{"min_age_secs":0}}""");

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{6,46}[a-z0-9]$")]
    private static partial Regex BasinName();

    private async Task HandleAsync(HttpContext ctx)
    {
        var call = new Call(ctx);
        try
        {
            await ServeAsync(call).ConfigureAwait(false);
        }
        catch (Exception) when (ctx.RequestAborted.IsCancellationRequested || _shutdown.IsCancellationRequested || call.Aborted)
        {
            // The client went away (or the stand-in is stopping): nothing left to answer.
            call.Aborted = true;
        }
        catch (IOException)
        {
            call.Aborted = true;
        }
        finally
        {
            _requests.Enqueue(new S2StandInRequest(
                call.At,
                ctx.Request.Method,
                call.Target,
                call.Op,
                call.Basin,
                call.Stream,
                ctx.Request.Host.Value ?? string.Empty,
                Header(ctx, "Authorization"),
                Header(ctx, "s2-basin"),
                Header(ctx, "s2-format"),
                Header(ctx, "Accept"),
                call.Aborted ? -1 : ctx.Response.StatusCode,
                call.Fault));
        }
    }

    private async Task ServeAsync(Call call)
    {
        HttpContext ctx = call.Context;
        Route route = Match(ctx.Request.Method, call.Path);
        call.Op = route.Op;
        call.Stream = route.Stream;

        if (Faults.IsDown)
        {
            call.Fault = S2FaultKind.Down;
            if (Faults.DownMode == S2DownMode.Abort)
            {
                Abort(call);
                return;
            }

            await WriteAsync(ctx, Error(503, "unavailable", "the stand-in is down")).ConfigureAwait(false);
            return;
        }

        TimeSpan latency = Faults.Latency;
        if (latency > TimeSpan.Zero)
        {
            await Task.Delay(latency, _shutdown.Token).ConfigureAwait(false);
        }

        (string? basin, Reply? basinError) = ResolveBasin(ctx);
        call.Basin = basin;
        Reply? refusal = Authorize(ctx);
        if (refusal is not null)
        {
            await WriteAsync(ctx, refusal).ConfigureAwait(false);
            return;
        }

        if (route.Kind == RouteKind.NotFound)
        {
            await WriteAsync(ctx, Error(404, "bad_path", $"no such path: {call.Path}")).ConfigureAwait(false);
            return;
        }

        if (route.Kind == RouteKind.MethodNotAllowed)
        {
            ctx.Response.Headers.Allow = route.Allow;
            await WriteAsync(ctx, Error(405, "bad_path", $"method {ctx.Request.Method} not allowed on {call.Path}")).ConfigureAwait(false);
            return;
        }

        if (basinError is not null)
        {
            await WriteAsync(ctx, basinError).ConfigureAwait(false);
            return;
        }

        if (route.Stream is { } name && (name.Length == 0 || Encoding.UTF8.GetByteCount(name) > 512))
        {
            await WriteAsync(ctx, Error(400, "bad_path", "stream name must be 1 to 512 bytes")).ConfigureAwait(false);
            return;
        }

        byte[] body = await ReadBodyAsync(ctx).ConfigureAwait(false);

        S2Faults.Rule? fault = Faults.Take(route.Op);
        if (fault is not null && !fault.AfterLanding)
        {
            switch (fault.Kind)
            {
                case S2Faults.RuleKind.Status:
                    call.Fault = S2FaultKind.Status;
                    await WriteAsync(ctx, InjectedError(fault)).ConfigureAwait(false);
                    return;
                case S2Faults.RuleKind.Drop:
                    call.Fault = S2FaultKind.DroppedBeforeLanding;
                    Abort(call);
                    return;
                case S2Faults.RuleKind.Delay:
                    call.Fault = S2FaultKind.Delayed;
                    await Task.Delay(fault.Delay, _shutdown.Token).ConfigureAwait(false);
                    break;
            }
        }

        Reply reply = route.Kind switch
        {
            RouteKind.ListStreams => ListStreams(basin!, ctx.Request.Query),
            RouteKind.CreateStream => CreateStream(basin!, body),
            RouteKind.EnsureStream => EnsureStream(basin!, route.Stream!, body),
            RouteKind.GetStreamConfig => GetStreamConfig(basin!, route.Stream!),
            RouteKind.ReconfigureStream => GetStreamConfig(basin!, route.Stream!),
            RouteKind.DeleteStream => DeleteStreamReply(basin!, route.Stream!),
            RouteKind.Append => Append(basin!, route.Stream!, ctx.Request, body),
            RouteKind.CheckTail => CheckTail(basin!, route.Stream!),
            RouteKind.Read => await ReadAsync(basin!, route.Stream!, ctx, call).ConfigureAwait(false),
            _ => Error(404, "bad_path", "no such path"),
        };

        if (fault is { AfterLanding: true })
        {
            if (fault.Kind == S2Faults.RuleKind.Drop)
            {
                call.Fault = S2FaultKind.DroppedAfterLanding;
                Abort(call);
                return;
            }

            if (fault.Kind == S2Faults.RuleKind.Delay)
            {
                call.Fault = S2FaultKind.Delayed;
                await Task.Delay(fault.Delay, _shutdown.Token).ConfigureAwait(false);
            }
        }

        if (reply.Session is { } session)
        {
            using var sessionCancel = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, _shutdown.Token);
            await session(ctx, sessionCancel.Token).ConfigureAwait(false);
            return;
        }

        await WriteAsync(ctx, reply).ConfigureAwait(false);
    }

    private static void Abort(Call call)
    {
        call.Aborted = true;
        call.Context.Abort();
    }

    private Reply? Authorize(HttpContext ctx)
    {
        string? authorization = Header(ctx, "Authorization");
        const string Bearer = "Bearer ";
        if (authorization is null || !authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase) || authorization.Length == Bearer.Length)
        {
            ctx.Response.Headers.WWWAuthenticate = "Bearer";
            return Error(401, "permission_denied", "Authentication required: send Authorization: Bearer <token>");
        }

        string? expected = _accessToken;
        if (expected is not null && !string.Equals(authorization[Bearer.Length..].Trim(), expected, StringComparison.Ordinal))
        {
            return Error(403, "permission_denied", "Invalid token");
        }

        return null;
    }

    private static (string? Basin, Reply? Error) ResolveBasin(HttpContext ctx)
    {
        string? basin = Header(ctx, "s2-basin");
        if (basin is null)
        {
            // Host style: {basin}.b.s2.dev (or any {basin}.b.<domain>).
            string host = ctx.Request.Host.Host;
            int dot = host.IndexOf(".b.", StringComparison.Ordinal);
            if (dot > 0)
            {
                basin = host[..dot];
            }
        }

        if (basin is null)
        {
            return (null, Error(400, "bad_header", "missing s2-basin header (or {basin}.b.… host)"));
        }

        if (!BasinName().IsMatch(basin))
        {
            return (null, Error(400, "bad_header", $"invalid basin name: '{basin}'"));
        }

        return (basin, null);
    }

    private static Reply InjectedError(S2Faults.Rule fault)
    {
        string code = fault.Code ?? fault.Status switch
        {
            408 => "timeout",
            429 => "rate_limited",
            502 => "hot_server",
            503 => "unavailable",
            409 => "transaction_conflict",
            >= 500 => "other",
            _ => "invalid",
        };
        Reply reply = Error(fault.Status, code, $"injected fault: {fault.Status} {code}");
        return fault.RetryAfter is { } after
            ? reply with { RetryAfterMs = (long)after.TotalMilliseconds }
            : reply;
    }

    // ---- streams ---------------------------------------------------------------------------------

    private Reply ListStreams(string basin, IQueryCollection query)
    {
        string prefix = query["prefix"].ToString();
        string startAfter = query["start_after"].ToString();
        int limit = 1000;
        if (query.TryGetValue("limit", out StringValues limitText)
            && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit > 1000))
        {
            return Error(400, "bad_query", "limit must be an integer 0..1000");
        }

        if (limit == 0)
        {
            limit = 1000;
        }

        List<StandInStream> matching = [.. _store.Basin(basin).Values
            .Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal) && string.CompareOrdinal(s.Name, startAfter) > 0)
            .OrderBy(s => s.Name, StringComparer.Ordinal)];
        return Json(200, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("streams");
            foreach (StandInStream s in matching.Take(limit))
            {
                WriteStreamInfo(w, s);
            }

            w.WriteEndArray();
            w.WriteBoolean("has_more", matching.Count > limit);
            w.WriteEndObject();
        });
    }

    private Reply CreateStream(string basin, byte[] body)
    {
        string? name;
        JsonElement config;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("stream", out JsonElement stream)
                || stream.ValueKind != JsonValueKind.String)
            {
                return Error(400, "bad_json", "body must be a CreateStreamRequest with a string `stream`");
            }

            name = stream.GetString();
            config = doc.RootElement.TryGetProperty("config", out JsonElement c) ? c.Clone() : default;
        }
        catch (JsonException e)
        {
            return Error(400, "bad_json", e.Message);
        }

        if (string.IsNullOrEmpty(name) || Encoding.UTF8.GetByteCount(name) > 512)
        {
            return Error(422, "invalid", "stream name must be 1 to 512 bytes");
        }

        (StandInStream s, bool created) = _store.GetOrCreate(basin, name, DateTimeOffset.UtcNow, ConfigBytes(config));
        if (!created)
        {
            return Error(409, "resource_already_exists", $"stream '{name}' already exists");
        }

        ApplyConfig(s, config);
        return Json(201, w => WriteStreamInfo(w, s));
    }

    private Reply EnsureStream(string basin, string name, byte[] body)
    {
        JsonElement config = default;
        if (body.Length > 0)
        {
            try
            {
                using JsonDocument doc = JsonDocument.Parse(body);
                config = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                return Error(400, "bad_json", e.Message);
            }
        }

        (StandInStream s, bool created) = _store.GetOrCreate(basin, name, DateTimeOffset.UtcNow, ConfigBytes(config));
        if (created)
        {
            ApplyConfig(s, config);
        }

        return Json(created ? 201 : 200, w => WriteStreamInfo(w, s));
    }

    private Reply GetStreamConfig(string basin, string name)
    {
        StandInStream? s = _store.Find(basin, name);
        return s is null
            ? StreamNotFound(name)
            : new Reply(200, s.Config ?? DefaultStreamConfig);
    }

    private Reply DeleteStreamReply(string basin, string name)
        => _store.Delete(basin, name) ? new Reply(202, null) : StreamNotFound(name);

    private static byte[]? ConfigBytes(JsonElement config)
        => config.ValueKind == JsonValueKind.Object ? Encoding.UTF8.GetBytes(config.GetRawText()) : null;

    private static void ApplyConfig(StandInStream s, JsonElement config)
    {
        if (config.ValueKind == JsonValueKind.Object
            && config.TryGetProperty("timestamping", out JsonElement ts)
            && ts.ValueKind == JsonValueKind.Object)
        {
            if (ts.TryGetProperty("mode", out JsonElement mode) && mode.ValueKind == JsonValueKind.String)
            {
                s.TimestampingMode = mode.GetString()!;
            }

            if (ts.TryGetProperty("uncapped", out JsonElement uncapped) && uncapped.ValueKind is JsonValueKind.True or JsonValueKind.False)
            {
                s.Uncapped = uncapped.GetBoolean();
            }
        }
    }

    private static void WriteStreamInfo(Utf8JsonWriter w, StandInStream s)
    {
        w.WriteStartObject();
        w.WriteString("name", s.Name);
        w.WriteString("created_at", s.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        w.WriteNull("deleted_at");
        w.WriteEndObject();
    }

    private static Reply StreamNotFound(string name) => Error(404, "stream_not_found", $"stream '{name}' not found");

    // ---- records ---------------------------------------------------------------------------------

    private Reply CheckTail(string basin, string name)
    {
        StandInStream? s = Open(basin, name, CreateStreamOnRead);
        if (s is null)
        {
            return StreamNotFound(name);
        }

        S2StandInPosition tail;
        lock (s.Gate)
        {
            tail = s.Tail;
        }

        return Json(200, w =>
        {
            w.WriteStartObject();
            WritePosition(w, "tail", tail);
            w.WriteEndObject();
        });
    }

    private Reply Append(string basin, string name, HttpRequest request, byte[] body)
    {
        if (request.ContentType is { } contentType && !contentType.StartsWith(JsonType, StringComparison.OrdinalIgnoreCase))
        {
            return Error(415, "bad_header", $"the S2 stand-in speaks JSON only, not '{contentType}'");
        }

        (bool base64, Reply? formatError) = Format(request.Headers["s2-format"]);
        if (formatError is not null)
        {
            return formatError;
        }

        var records = new List<(byte[] Body, KeyValuePair<byte[], byte[]>[] Headers, long? Timestamp)>();
        long? matchSeqNum = null;
        string? fencingToken = null;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body);
            JsonElement root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("records", out JsonElement list)
                || list.ValueKind != JsonValueKind.Array)
            {
                return Error(400, "bad_json", "body must be an AppendInput with a `records` array");
            }

            if (root.TryGetProperty("match_seq_num", out JsonElement match) && match.ValueKind != JsonValueKind.Null)
            {
                if (!match.TryGetInt64(out long m) || m < 0)
                {
                    return Error(400, "bad_json", "match_seq_num must be an unsigned integer");
                }

                matchSeqNum = m;
            }

            if (root.TryGetProperty("fencing_token", out JsonElement fence) && fence.ValueKind != JsonValueKind.Null)
            {
                if (fence.ValueKind != JsonValueKind.String)
                {
                    return Error(400, "bad_json", "fencing_token must be a string");
                }

                fencingToken = fence.GetString();
            }

            foreach (JsonElement record in list.EnumerateArray())
            {
                if (record.ValueKind != JsonValueKind.Object)
                {
                    return Error(400, "bad_json", "each record must be an object");
                }

                byte[] recordBody = [];
                if (record.TryGetProperty("body", out JsonElement b) && b.ValueKind != JsonValueKind.Null)
                {
                    if (b.ValueKind != JsonValueKind.String)
                    {
                        return Error(400, "bad_json", "record body must be a string");
                    }

                    recordBody = Decode(b, base64);
                }

                var headers = new List<KeyValuePair<byte[], byte[]>>();
                if (record.TryGetProperty("headers", out JsonElement h) && h.ValueKind != JsonValueKind.Null)
                {
                    if (h.ValueKind != JsonValueKind.Array)
                    {
                        return Error(400, "bad_json", "record headers must be an array of [name, value]");
                    }

                    foreach (JsonElement pair in h.EnumerateArray())
                    {
                        if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2
                            || pair[0].ValueKind != JsonValueKind.String || pair[1].ValueKind != JsonValueKind.String)
                        {
                            return Error(400, "bad_json", "a header is a [name, value] pair of strings");
                        }

                        headers.Add(new(Decode(pair[0], base64), Decode(pair[1], base64)));
                    }
                }

                long? timestamp = null;
                if (record.TryGetProperty("timestamp", out JsonElement t) && t.ValueKind != JsonValueKind.Null)
                {
                    if (!t.TryGetInt64(out long ts) || ts < 0)
                    {
                        return Error(400, "bad_json", "record timestamp must be an unsigned integer");
                    }

                    timestamp = ts;
                }

                records.Add((recordBody, [.. headers], timestamp));
            }
        }
        catch (JsonException e)
        {
            return Error(400, "bad_json", e.Message);
        }
        catch (FormatException e)
        {
            return Error(400, "bad_json", "invalid base64: " + e.Message);
        }

        if (records.Count is 0 or > MaxBatchRecords)
        {
            return Error(422, "invalid", $"an append carries 1 to {MaxBatchRecords} records, not {records.Count}");
        }

        long metered = records.Sum(r => 8L + r.Body.Length + r.Headers.Sum(h => 2L + h.Key.Length + h.Value.Length));
        if (metered > MaxBatchBytes)
        {
            return Error(422, "invalid", $"batch of {metered} metered bytes exceeds {MaxBatchBytes}");
        }

        if (fencingToken is not null && Encoding.UTF8.GetByteCount(fencingToken) > 36)
        {
            return Error(422, "invalid", "fencing token must not exceed 36 bytes");
        }

        StandInStream? s = Open(basin, name, CreateStreamOnAppend);
        if (s is null)
        {
            return StreamNotFound(name);
        }

        lock (s.Gate)
        {
            if (fencingToken is not null && fencingToken != s.FencingToken)
            {
                string current = s.FencingToken;
                return Json(412, w =>
                {
                    w.WriteStartObject();
                    w.WriteString("fencing_token_mismatch", current);
                    w.WriteEndObject();
                });
            }

            long tailSeq = s.Records.Count;
            if (matchSeqNum is { } expected && expected != tailSeq)
            {
                return Json(412, w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("seq_num_mismatch", tailSeq);
                    w.WriteEndObject();
                });
            }

            if (s.TimestampingMode == "client-require" && records.Any(r => r.Timestamp is null))
            {
                return Error(422, "invalid", "stream requires client timestamps");
            }

            long now = Clock();
            S2StandInPosition start = default;
            for (int i = 0; i < records.Count; i++)
            {
                (byte[] recordBody, KeyValuePair<byte[], byte[]>[] headers, long? clientTs) = records[i];
                long ts = s.TimestampingMode == "arrival" ? now : clientTs ?? now;
                if (!s.Uncapped && ts > now)
                {
                    ts = now;
                }

                ts = Math.Max(ts, s.LastTimestamp);
                var stored = new S2StandInRecord(s.Records.Count, ts, recordBody, headers);
                s.Records.Add(stored);
                s.LastTimestamp = ts;
                if (i == 0)
                {
                    start = new S2StandInPosition(stored.SeqNum, ts);
                }

                // Command record "fence": the body becomes the stream's fencing token.
                if (headers.Length == 1 && headers[0].Key.Length == 0 && headers[0].Value.AsSpan().SequenceEqual("fence"u8))
                {
                    s.FencingToken = Encoding.UTF8.GetString(recordBody);
                }
            }

            S2StandInPosition end = new(s.Records.Count, s.LastTimestamp);
            S2StandInPosition tail = s.Tail;
            s.SignalAppended();
            return Json(200, w =>
            {
                w.WriteStartObject();
                WritePosition(w, "start", start);
                WritePosition(w, "end", end);
                WritePosition(w, "tail", tail);
                w.WriteEndObject();
            });
        }
    }

    private async Task<Reply> ReadAsync(string basin, string name, HttpContext ctx, Call call)
    {
        IQueryCollection query = ctx.Request.Query;
        string accept = Header(ctx, "Accept") ?? string.Empty;
        bool sse = accept.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase);
        if (!sse && accept.Contains("application/protobuf", StringComparison.OrdinalIgnoreCase))
        {
            return Error(415, "bad_header", "the S2 stand-in answers JSON and SSE only, not protobuf");
        }

        (bool base64, Reply? formatError) = Format(ctx.Request.Headers["s2-format"]);
        if (formatError is not null)
        {
            return formatError;
        }

        long? seqNum, timestamp, tailOffset, count, bytes, until, wait;
        bool clamp;
        try
        {
            seqNum = U64(query, "seq_num");
            timestamp = U64(query, "timestamp");
            tailOffset = U64(query, "tail_offset");
            count = U64(query, "count");
            bytes = U64(query, "bytes");
            until = U64(query, "until");
            wait = U64(query, "wait");
            clamp = Bool(query, "clamp");
        }
        catch (FormatException e)
        {
            return Error(400, "bad_query", e.Message);
        }

        if ((seqNum.HasValue ? 1 : 0) + (timestamp.HasValue ? 1 : 0) + (tailOffset.HasValue ? 1 : 0) > 1)
        {
            return Error(400, "bad_query", "only one of seq_num, timestamp, tail_offset may be given");
        }

        if (timestamp is { } startTs && until is { } u && u <= startTs)
        {
            return Error(422, "invalid", "start `timestamp` exceeds or equal to `until`");
        }

        // Limits: 0 means "no limit"; a unary read is always capped at 1000 records / 1 MiB.
        long? countLimit = count is > 0 ? count : null;
        long? bytesLimit = bytes is > 0 ? bytes : null;
        long processedCount = 0, processedBytes = 0;
        if (sse && Header(ctx, "Last-Event-ID") is { } lastEventId)
        {
            string[] parts = lastEventId.Split(',');
            if (parts.Length != 3
                || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long lastSeq)
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out processedCount)
                || !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out processedBytes))
            {
                return Error(400, "bad_header", "Last-Event-ID must be seq_num,count,bytes");
            }

            seqNum = lastSeq + 1;
            timestamp = null;
            tailOffset = null;
            countLimit = countLimit is { } c ? Math.Max(0, c - processedCount) : null;
            bytesLimit = bytesLimit is { } b ? Math.Max(0, b - processedBytes) : null;
        }

        TimeSpan? waitFor = wait is { } w ? TimeSpan.FromSeconds(sse ? w : Math.Min(w, 60)) : null;
        bool bounded = countLimit.HasValue || bytesLimit.HasValue || until.HasValue;
        if (!sse)
        {
            countLimit = Math.Min(countLimit ?? MaxBatchRecords, MaxBatchRecords);
            bytesLimit = Math.Min(bytesLimit ?? MaxBatchBytes, MaxBatchBytes);
            bounded = true;
        }

        bool mayFollow = !bounded || waitFor > TimeSpan.Zero;

        StandInStream? s = Open(basin, name, CreateStreamOnRead);
        if (s is null)
        {
            return StreamNotFound(name);
        }

        long start;
        lock (s.Gate)
        {
            S2StandInPosition tail = s.Tail;
            bool beyond;
            if (timestamp is { } ts)
            {
                beyond = ts > tail.Timestamp;
                start = beyond ? tail.SeqNum : s.SeqNumAtTimestamp(ts);
            }
            else if (tailOffset is { } offset)
            {
                beyond = false;
                start = Math.Max(0, tail.SeqNum - offset);
            }
            else
            {
                start = seqNum ?? 0;
                beyond = start > tail.SeqNum;
            }

            if (beyond)
            {
                if (!clamp)
                {
                    return Unwritten(tail);
                }

                start = tail.SeqNum;
            }

            if (start == tail.SeqNum && !mayFollow)
            {
                return Unwritten(tail);
            }
        }

        if (sse)
        {
            return new Reply(200, null)
            {
                Session = (context, token) => ReadSessionAsync(context, s, start, countLimit, bytesLimit, until, waitFor, mayFollow, base64, processedCount, processedBytes, token),
            };
        }

        // Unary: what is there now, or — with `wait` — the first records to arrive within it.
        DateTime deadline = DateTime.UtcNow + (waitFor ?? TimeSpan.Zero);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, _shutdown.Token);
        while (true)
        {
            Task appended;
            lock (s.Gate)
            {
                if (start < s.Records.Count)
                {
                    List<S2StandInRecord> batch = Collect(s, start, countLimit!.Value, bytesLimit!.Value, until, out _);
                    S2StandInPosition? tail = waitFor > TimeSpan.Zero ? s.Tail : null;
                    return Json(200, w => WriteReadBatch(w, batch, tail, base64));
                }

                appended = s.AppendedSignal;
            }

            TimeSpan left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                S2StandInPosition tail;
                lock (s.Gate)
                {
                    tail = s.Tail;
                }

                return Json(200, w => WriteReadBatch(w, [], tail, base64));
            }

            await Task.WhenAny(appended, Task.Delay(left, cancel.Token)).ConfigureAwait(false);
            cancel.Token.ThrowIfCancellationRequested();
        }
    }

    private async Task ReadSessionAsync(
        HttpContext ctx,
        StandInStream s,
        long start,
        long? countLimit,
        long? bytesLimit,
        long? until,
        TimeSpan? wait,
        bool mayFollow,
        bool base64,
        long processedCount,
        long processedBytes,
        CancellationToken token)
    {
        HttpResponse response = ctx.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(token).ConfigureAwait(false);

        long position = start;
        bool following = false;
        DateTime? waitDeadline = null;
        DateTime lastPing = DateTime.MinValue;
        while (!token.IsCancellationRequested)
        {
            Task appended;
            List<S2StandInRecord> batch;
            S2StandInPosition tail;
            bool blocked;
            lock (s.Gate)
            {
                int maxCount = (int)Math.Min(countLimit ?? long.MaxValue, MaxBatchRecords);
                int maxBytes = (int)Math.Min(bytesLimit ?? long.MaxValue, MaxBatchBytes);
                if (maxCount <= 0 || maxBytes <= 0)
                {
                    batch = [];
                    blocked = true;
                }
                else
                {
                    batch = Collect(s, position, maxCount, maxBytes, until, out blocked);
                }

                tail = s.Tail;
                appended = s.AppendedSignal;
            }

            if (batch.Count > 0)
            {
                int batchBytes = batch.Sum(r => r.MeteredBytes);
                processedCount += batch.Count;
                processedBytes += batchBytes;
                countLimit -= batch.Count;
                bytesLimit -= batchBytes;
                position = batch[^1].SeqNum + 1;
                string id = string.Create(CultureInfo.InvariantCulture, $"{batch[^1].SeqNum},{processedCount},{processedBytes}");
                byte[] data = JsonBytes(w => WriteReadBatch(w, batch, following ? tail : null, base64));
                await WriteEventAsync(response, "batch", id, data, token).ConfigureAwait(false);
                waitDeadline = wait.HasValue ? DateTime.UtcNow + wait.Value : null;
                continue;
            }

            if (blocked || !mayFollow)
            {
                // A limit or `until` is reached, or the read may not wait at the tail.
                break;
            }

            following = true;
            waitDeadline ??= wait.HasValue ? DateTime.UtcNow + wait.Value : null;
            DateTime now = DateTime.UtcNow;
            if (waitDeadline <= now)
            {
                break;
            }

            if (now - lastPing >= _pingInterval)
            {
                lastPing = now;
                byte[] ping = JsonBytes(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("timestamp", Clock());
                    w.WriteEndObject();
                });
                await WriteEventAsync(response, "ping", null, ping, token).ConfigureAwait(false);
            }

            TimeSpan sleep = _pingInterval - (now - lastPing);
            if (waitDeadline is { } d && d - now < sleep)
            {
                sleep = d - now;
            }

            await Task.WhenAny(appended, Task.Delay(sleep, token)).ConfigureAwait(false);
        }

        if (!token.IsCancellationRequested)
        {
            await response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), token).ConfigureAwait(false);
            await response.Body.FlushAsync(token).ConfigureAwait(false);
        }
    }

    private static async Task WriteEventAsync(HttpResponse response, string name, string? id, byte[] data, CancellationToken token)
    {
        var frame = new StringBuilder(data.Length + 64).Append("event: ").Append(name).Append('\n');
        if (id is not null)
        {
            frame.Append("id: ").Append(id).Append('\n');
        }

        frame.Append("data: ").Append(Encoding.UTF8.GetString(data)).Append("\n\n");
        await response.Body.WriteAsync(Encoding.UTF8.GetBytes(frame.ToString()), token).ConfigureAwait(false);
        await response.Body.FlushAsync(token).ConfigureAwait(false);
    }

    /// <summary>Records from <paramref name="from"/> within the limits; <paramref name="blocked"/> when a limit or <c>until</c> stopped it before the tail.</summary>
    private static List<S2StandInRecord> Collect(StandInStream s, long from, long maxCount, long maxBytes, long? until, out bool blocked)
    {
        var batch = new List<S2StandInRecord>();
        long size = 0;
        blocked = false;
        for (long seq = from; seq < s.Records.Count; seq++)
        {
            S2StandInRecord record = s.Records[(int)seq];
            if ((until is { } u && record.Timestamp >= u) || batch.Count + 1 > maxCount || size + record.MeteredBytes > maxBytes)
            {
                blocked = true;
                break;
            }

            batch.Add(record);
            size += record.MeteredBytes;
        }

        return batch;
    }

    private StandInStream? Open(string basin, string name, bool create)
        => create ? _store.GetOrCreate(basin, name, DateTimeOffset.UtcNow, null).Stream : _store.Find(basin, name);

    private static Reply Unwritten(S2StandInPosition tail) => Json(416, w =>
    {
        w.WriteStartObject();
        WritePosition(w, "tail", tail);
        w.WriteEndObject();
    });

    private static void WriteReadBatch(Utf8JsonWriter w, List<S2StandInRecord> records, S2StandInPosition? tail, bool base64)
    {
        w.WriteStartObject();
        w.WriteStartArray("records");
        foreach (S2StandInRecord r in records)
        {
            w.WriteStartObject();
            w.WriteNumber("seq_num", r.SeqNum);
            w.WriteNumber("timestamp", r.Timestamp);
            if (r.Headers.Count > 0)
            {
                w.WriteStartArray("headers");
                foreach (KeyValuePair<byte[], byte[]> h in r.Headers)
                {
                    w.WriteStartArray();
                    WriteData(w, h.Key, base64);
                    WriteData(w, h.Value, base64);
                    w.WriteEndArray();
                }

                w.WriteEndArray();
            }

            w.WritePropertyName("body");
            WriteData(w, r.Body, base64);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        if (tail is { } t)
        {
            WritePosition(w, "tail", t);
        }

        w.WriteEndObject();
    }

    private static void WriteData(Utf8JsonWriter w, byte[] data, bool base64)
    {
        if (base64)
        {
            w.WriteBase64StringValue(data);
            return;
        }

        try
        {
            w.WriteStringValue(data);
        }
        catch (ArgumentException)
        {
            w.WriteStringValue(Encoding.UTF8.GetString(data)); // not UTF-8: lossy, as raw format implies
        }
    }

    private static void WritePosition(Utf8JsonWriter w, string name, S2StandInPosition position)
    {
        w.WriteStartObject(name);
        w.WriteNumber("seq_num", position.SeqNum);
        w.WriteNumber("timestamp", position.Timestamp);
        w.WriteEndObject();
    }

    private static byte[] Decode(JsonElement value, bool base64)
        => base64 ? value.GetBytesFromBase64() : Encoding.UTF8.GetBytes(value.GetString()!);

    private static (bool Base64, Reply? Error) Format(StringValues header)
    {
        string? format = header.Count == 0 ? null : header.ToString().Trim();
        return format switch
        {
            null or "" or "raw" => (false, null),
            "base64" => (true, null),
            _ => (false, Error(400, "bad_header", $"s2-format must be raw or base64, not '{format}'")),
        };
    }

    private static long? U64(IQueryCollection query, string name)
    {
        if (!query.TryGetValue(name, out StringValues value))
        {
            return null;
        }

        if (!long.TryParse(value.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out long result))
        {
            throw new FormatException($"`{name}` must be an unsigned integer");
        }

        return result;
    }

    private static bool Bool(IQueryCollection query, string name)
    {
        if (!query.TryGetValue(name, out StringValues value))
        {
            return false;
        }

        return value.ToString() switch
        {
            "true" => true,
            "false" => false,
            _ => throw new FormatException($"`{name}` must be true or false"),
        };
    }

    // ---- plumbing --------------------------------------------------------------------------------

    private static Route Match(string method, string path)
    {
        if (!path.StartsWith("/v1/", StringComparison.Ordinal))
        {
            return new Route(RouteKind.NotFound, S2Op.Other, null, string.Empty);
        }

        string[] parts = path[4..].Split('/');
        if (parts[0] != "streams")
        {
            return new Route(RouteKind.NotFound, S2Op.Other, null, string.Empty);
        }

        string? stream = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : null;
        return (parts.Length, method) switch
        {
            (1, "GET") => new Route(RouteKind.ListStreams, S2Op.ListStreams, null, string.Empty),
            (1, "POST") => new Route(RouteKind.CreateStream, S2Op.CreateStream, null, string.Empty),
            (1, _) => new Route(RouteKind.MethodNotAllowed, S2Op.Other, null, "GET, POST"),
            (2, "GET") => new Route(RouteKind.GetStreamConfig, S2Op.StreamConfig, stream, string.Empty),
            (2, "PUT") => new Route(RouteKind.EnsureStream, S2Op.CreateStream, stream, string.Empty),
            (2, "PATCH") => new Route(RouteKind.ReconfigureStream, S2Op.StreamConfig, stream, string.Empty),
            (2, "DELETE") => new Route(RouteKind.DeleteStream, S2Op.StreamConfig, stream, string.Empty),
            (2, _) => new Route(RouteKind.MethodNotAllowed, S2Op.Other, stream, "GET, PUT, PATCH, DELETE"),
            (3, "GET") when parts[2] == "records" => new Route(RouteKind.Read, S2Op.Read, stream, string.Empty),
            (3, "POST") when parts[2] == "records" => new Route(RouteKind.Append, S2Op.Append, stream, string.Empty),
            (3, _) when parts[2] == "records" => new Route(RouteKind.MethodNotAllowed, S2Op.Other, stream, "GET, POST"),
            (4, "GET") when parts[2] == "records" && parts[3] == "tail" => new Route(RouteKind.CheckTail, S2Op.CheckTail, stream, string.Empty),
            (4, _) when parts[2] == "records" && parts[3] == "tail" => new Route(RouteKind.MethodNotAllowed, S2Op.Other, stream, "GET"),
            _ => new Route(RouteKind.NotFound, S2Op.Other, null, string.Empty),
        };
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext ctx)
    {
        if (HttpMethods.IsGet(ctx.Request.Method) || HttpMethods.IsDelete(ctx.Request.Method))
        {
            return [];
        }

        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted).ConfigureAwait(false);
        return buffer.ToArray();
    }

    private static async Task WriteAsync(HttpContext ctx, Reply reply)
    {
        HttpResponse response = ctx.Response;
        response.StatusCode = reply.Status;
        if (reply.RetryAfterMs is { } ms)
        {
            response.Headers["retry-after-ms"] = ms.ToString(CultureInfo.InvariantCulture);
        }

        if (reply.Body is { } body)
        {
            response.ContentType = JsonType;
            response.ContentLength = body.Length;
            await response.Body.WriteAsync(body, ctx.RequestAborted).ConfigureAwait(false);
        }
        else
        {
            response.ContentLength = 0;
        }
    }

    private static string? Header(HttpContext ctx, string name)
        => ctx.Request.Headers.TryGetValue(name, out StringValues value) && value.Count > 0 ? value.ToString() : null;

    private static Reply Error(int status, string code, string message) => Json(status, w =>
    {
        w.WriteStartObject();
        w.WriteString("code", code);
        w.WriteString("message", message);
        w.WriteEndObject();
    });

    private static Reply Json(int status, Action<Utf8JsonWriter> write) => new(status, JsonBytes(write));

    private static byte[] JsonBytes(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    private enum RouteKind
    {
        NotFound,
        MethodNotAllowed,
        ListStreams,
        CreateStream,
        EnsureStream,
        GetStreamConfig,
        ReconfigureStream,
        DeleteStream,
        Append,
        Read,
        CheckTail,
    }

    private sealed record Route(RouteKind Kind, S2Op Op, string? Stream, string Allow);

    private sealed record Reply(int Status, byte[]? Body)
    {
        public long? RetryAfterMs { get; init; }

        public Func<HttpContext, CancellationToken, Task>? Session { get; init; }
    }

    private sealed class Call
    {
        public Call(HttpContext context)
        {
            Context = context;
            At = DateTimeOffset.UtcNow;
            Target = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? (context.Request.Path + context.Request.QueryString);
            int query = Target.IndexOf('?', StringComparison.Ordinal);
            Path = query < 0 ? Target : Target[..query];
        }

        public HttpContext Context { get; }

        public DateTimeOffset At { get; }

        public string Target { get; }

        public string Path { get; }

        public S2Op Op { get; set; } = S2Op.Other;

        public string? Basin { get; set; }

        public string? Stream { get; set; }

        public S2FaultKind Fault { get; set; }

        public bool Aborted { get; set; }
    }
}
