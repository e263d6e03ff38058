using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using AotEvents.Archive;
using AotEvents.Events;

namespace AotEvents.Storage;

/// <summary>
/// <c>GET /telemetry/events</c> without S2 (SPEC §7): reads the local JSONL files in seq order.
/// <list type="bullet">
/// <item><c>offset</c> is a seq: a page holds envelopes with seq ≥ offset, and
/// <c>X-Next-Offset</c> is the seq the next page starts at (inclusive), so paging from the first
/// page to the last returns every matching event once, in order.</item>
/// <item><c>since</c>/<c>until</c> match <c>event.ts</c> (µs, since inclusive, until exclusive),
/// the category mask selects which category files are read at all, <c>capture_session_id</c>
/// defaults to the current/last session.</item>
/// <item>The start is found with the segments' sparse indexes (no scan from the beginning).</item>
/// <item>A page reads at most <see cref="MaxScanBytesPerPage"/> of file: a filter that matches
/// little may give a short (even empty) page with <c>X-Has-More: true</c>; the next page goes on
/// where this one stopped.</item>
/// </list>
/// Reads have no side effects (an index built on the way is a cache file).
/// </summary>
public sealed class JsonlArchive : IArchiveReader
{
    public const long MaxScanBytesPerPage = 16L * 1024 * 1024;
    private const int ChunkBytes = 64 * 1024;

    private readonly SegmentCatalog _segments;
    private readonly Func<long> _writtenSeq;
    private readonly Func<string?> _defaultSessionId;

    /// <param name="writer">Whose files to read (up to its <c>WrittenSeq</c>).</param>
    /// <param name="defaultSessionId">The session read when the query names none (the pipeline's <c>LastSession?.Id</c>).</param>
    public JsonlArchive(JsonlWriter writer, Func<string?> defaultSessionId)
        : this(writer.Segments, () => writer.WrittenSeq, defaultSessionId)
    {
    }

    public JsonlArchive(SegmentCatalog segments, Func<long> writtenSeq, Func<string?> defaultSessionId)
    {
        _segments = segments;
        _writtenSeq = writtenSeq;
        _defaultSessionId = defaultSessionId;
    }

    public Task<ArchivePage> ReadAsync(ArchiveQuery query, CancellationToken cancellationToken)
    {
        try
        {
            return Task.FromResult(Read(query, cancellationToken));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Task.FromException<ArchivePage>(new ArchiveUnavailableException("reading the JSONL files failed: " + e.Message, e));
        }
    }

    /// <summary>Reads one page synchronously (local files).</summary>
    public ArchivePage Read(ArchiveQuery query, CancellationToken cancellationToken = default)
    {
        var page = new ArchivePage();
        int limit = Math.Clamp(query.Limit, 1, 1000);
        long start = Math.Max(1, query.Offset ?? 1);
        long bound = _writtenSeq();
        string? sessionId = query.CaptureSessionId ?? _defaultSessionId();
        byte[]? session = sessionId is null ? null : Encoding.UTF8.GetBytes(sessionId);
        int mask = query.CategoryMask & EventVocabulary.AllCategoriesMask;
        if (mask == 0 || start > bound) return page;

        using JsonlReplay replay = JsonlReplay.Open(_segments, start - 1, bound, mask);
        var copier = new PageCopier();
        while (replay.TryRead(out ReplayItem item) == ReplayRead.Envelope)
        {
            if (Matches(item.Json.Span, session, query.SinceMicros, query.UntilMicros))
            {
                if (page.Envelopes.Count == limit)
                {
                    page.HasMore = true;
                    page.NextOffset = item.Seq;
                    return page;
                }
                page.Envelopes.Add(copier.Copy(item.Json.Span));
            }
            if (replay.BytesRead >= MaxScanBytesPerPage && item.Seq < bound)
            {
                // Enough reading for one request: the next page starts after what was examined.
                page.HasMore = true;
                page.NextOffset = item.Seq + 1;
                return page;
            }
            cancellationToken.ThrowIfCancellationRequested();
        }
        return page;
    }

    /// <summary>Session and time-window filter on a daemon-written envelope line.</summary>
    internal static bool Matches(ReadOnlySpan<byte> json, byte[]? session, long? sinceMicros, long? untilMicros)
    {
        if (session is null && sinceMicros is null && untilMicros is null) return true;
        if (!TryReadFields(json, out ReadOnlySpan<byte> sessionRaw, out bool sessionEscaped, out long ts)) return false;
        if (session is not null)
        {
            if (sessionEscaped)
            {
                if (!UnescapedEquals(sessionRaw, session)) return false;
            }
            else if (!sessionRaw.SequenceEqual(session))
            {
                return false;
            }
        }
        if (sinceMicros is long since && ts < since) return false;
        if (untilMicros is long until && ts >= until) return false;
        return true;
    }

    private static ReadOnlySpan<byte> SessionPrefix => "{\"capture_session_id\":\""u8;
    private static ReadOnlySpan<byte> EventTs => ",\"event\":{\"ts\":"u8;

    /// <summary>
    /// capture_session_id (raw) and event.ts: a fast path for the daemon's fixed member order, with
    /// a full parse when the line does not have it.
    /// </summary>
    private static bool TryReadFields(ReadOnlySpan<byte> json, out ReadOnlySpan<byte> session, out bool escaped, out long ts)
    {
        session = default;
        escaped = false;
        ts = 0;
        if (json.StartsWith(SessionPrefix))
        {
            ReadOnlySpan<byte> rest = json[SessionPrefix.Length..];
            int quote = rest.IndexOf((byte)'"');
            if (quote >= 0 && rest[..quote].IndexOf((byte)'\\') < 0)
            {
                session = rest[..quote];
                int at = rest.IndexOf(EventTs);
                if (at > quote && Utf8Parser.TryParse(rest[(at + EventTs.Length)..], out ts, out _)) return true;
            }
        }
        return TryParseFields(json, out session, out escaped, out ts);
    }

    private static bool TryParseFields(ReadOnlySpan<byte> json, out ReadOnlySpan<byte> session, out bool escaped, out long ts)
    {
        session = default;
        escaped = false;
        ts = 0;
        bool haveSession = false, haveTs = false;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("capture_session_id"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String) return false;
                    session = reader.ValueSpan;
                    escaped = reader.ValueIsEscaped;
                    haveSession = true;
                }
                else if (reader.ValueTextEquals("event"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject) return false;
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        bool isTs = reader.ValueTextEquals("ts"u8);
                        reader.Read();
                        if (isTs && reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out ts)) haveTs = true;
                        reader.Skip();
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            return false;
        }
        return haveSession && haveTs;
    }

    private static bool UnescapedEquals(ReadOnlySpan<byte> rawEscaped, byte[] expected)
    {
        // Rare (the daemon's session ids are GUIDs): quote it back into a JSON string and compare.
        byte[] quoted = new byte[rawEscaped.Length + 2];
        quoted[0] = quoted[^1] = (byte)'"';
        rawEscaped.CopyTo(quoted.AsSpan(1));
        var reader = new Utf8JsonReader(quoted);
        return reader.Read() && reader.ValueTextEquals(expected);
    }

    /// <summary>Copies page envelopes into a few shared arrays instead of one array each.</summary>
    private sealed class PageCopier
    {
        private byte[]? _chunk;
        private int _used;

        public ReadOnlyMemory<byte> Copy(ReadOnlySpan<byte> json)
        {
            if (json.Length > ChunkBytes / 4) return json.ToArray();
            if (_chunk is null || _chunk.Length - _used < json.Length)
            {
                _chunk = new byte[ChunkBytes];
                _used = 0;
            }
            json.CopyTo(_chunk.AsSpan(_used));
            var memory = new ReadOnlyMemory<byte>(_chunk, _used, json.Length);
            _used += json.Length;
            return memory;
        }
    }
}
