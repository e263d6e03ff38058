using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace AotEvents.Events;

/// <summary>
/// Validates one published event object (SPEC §1, §3) and writes the envelope's <c>event</c> member
/// into an <see cref="EventDrafts"/> buffer in canonical member order. Strings are copied as the
/// raw JSON tokens the publisher sent (already valid JSON) and <c>data</c> is copied byte for byte
/// minus insignificant whitespace: numbers are never re-encoded, key order is kept, and a JSONL line
/// can never be split by a newline inside <c>data</c>.
/// </summary>
public static partial class EventParser
{
    public const int MaxTypeBytes = 256;

    [ThreadStatic] private static byte[]? t_typeScratch;

    private static readonly SearchValues<byte> QuoteOrWhitespace = SearchValues.Create("\" \t\r\n"u8);

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        MaxDepth = 512,
    };

    /// <summary>
    /// Parses <paramref name="json"/>; on success appends one draft to <paramref name="drafts"/>.
    /// On failure nothing is appended and <paramref name="error"/> says why (always a 400).
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> json, long nowMicros, DetailLevel defaultDetail,
        EventDrafts drafts, int lineNumber, out string? error)
    {
        if (!Utf8.IsValid(json))
        {
            error = "body is not valid UTF-8";
            return false;
        }

        if (TryParseFast(json, nowMicros, defaultDetail, drafts, lineNumber))
        {
            error = null;
            return true;
        }
        return TryParseWithReader(json, nowMicros, defaultDetail, drafts, lineNumber, out error);
    }

    /// <summary>The general path (valid UTF-8 assumed): decides everything the fast path leaves, and words every error.</summary>
    internal static bool TryParseWithReader(ReadOnlySpan<byte> json, long nowMicros, DetailLevel defaultDetail,
        EventDrafts drafts, int lineNumber, out string? error)
    {
        try
        {
            return TryParseCore(json, nowMicros, defaultDetail, drafts, lineNumber, out error);
        }
        catch (JsonException e)
        {
            error = "malformed JSON: " + e.Message;
            return false;
        }
    }

    private ref struct Fields
    {
        public long Ts;
        public bool HasTs;
        public ReadOnlySpan<byte> Type;          // unescaped when TypeUnescaped, else the raw token body
        public bool HasType;
        public EventCategory Category;
        public bool HasCategory;
        public DetailLevel Detail;
        public bool HasDetail;
        public SourceKind Kind;
        public bool HasKind;
        public ReadOnlySpan<byte> SourceEvent;   // raw token with quotes
        public ReadOnlySpan<byte> Metadata;      // raw object
        public ReadOnlySpan<byte> Url;           // raw token with quotes
        public ReadOnlySpan<byte> Data;          // raw value
        public bool SeenSource;
        public bool SeenData;
    }

    private static bool TryParseCore(ReadOnlySpan<byte> json, long nowMicros, DetailLevel defaultDetail,
        EventDrafts drafts, int lineNumber, out string? error)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            error = "the event must be a JSON object";
            return false;
        }

        // Heap scratch (not stackalloc) so the unescaped type can live in Fields beside spans of the body.
        byte[] typeScratch = t_typeScratch ??= new byte[MaxTypeBytes * 6];
        var f = new Fields();

        while (true)
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.EndObject) break;
            // Property names we know are plain ASCII; an escaped name simply matches nothing.
            ReadOnlySpan<byte> name = reader.ValueIsEscaped ? default : reader.ValueSpan;
            reader.Read();

            if (name.SequenceEqual("ts"u8))
            {
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long ts) || ts < 0)
                {
                    error = "ts must be a non-negative integer (Unix microseconds)";
                    return false;
                }
                f.Ts = ts;
                f.HasTs = ts != 0;
            }
            else if (name.SequenceEqual("type"u8))
            {
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.String)
                {
                    error = "type must be a string";
                    return false;
                }
                if (!TryReadType(ref reader, typeScratch, out f.Type, out error)) return false;
                f.HasType = f.Type.Length > 0;
            }
            else if (name.SequenceEqual("category"u8))
            {
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped ||
                    !EventVocabulary.TryParseCategory(reader.ValueSpan, out f.Category))
                {
                    error = "unknown category (allowed: console, network, page, interaction, liveview, captcha, system)";
                    return false;
                }
                f.HasCategory = true;
            }
            else if (name.SequenceEqual("detail_level"u8))
            {
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped ||
                    !EventVocabulary.TryParseDetailLevel(reader.ValueSpan, out f.Detail))
                {
                    error = "unknown detail_level (allowed: minimal, standard, verbose, raw)";
                    return false;
                }
                f.HasDetail = true;
            }
            else if (name.SequenceEqual("source"u8))
            {
                if (f.SeenSource)
                {
                    error = "duplicate member: source";
                    return false;
                }
                f.SeenSource = true;
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (!TryReadSource(ref reader, json, ref f, out error)) return false;
            }
            else if (name.SequenceEqual("url"u8))
            {
                if (reader.TokenType == JsonTokenType.Null)
                {
                    f.Url = default;
                    continue;
                }
                if (reader.TokenType != JsonTokenType.String)
                {
                    error = "url must be a string";
                    return false;
                }
                f.Url = RawString(ref reader, json);
            }
            else if (name.SequenceEqual("data"u8))
            {
                if (f.SeenData)
                {
                    error = "duplicate member: data";
                    return false;
                }
                f.SeenData = true;
                int start = (int)reader.TokenStartIndex;
                bool isNull = reader.TokenType == JsonTokenType.Null;
                reader.Skip();
                if (!isNull) f.Data = json[start..(int)reader.BytesConsumed];
            }
            else
            {
                // Unknown members (including envelope fields like seq) are ignored: the daemon owns them.
                reader.Skip();
            }
        }

        if (reader.Read())
        {
            error = "unexpected content after the event object";
            return false;
        }

        if (!f.HasType)
        {
            error = "type is required";
            return false;
        }

        if (f.HasKind && f.Kind == SourceKind.Cdp)
        {
            error = "source.kind cdp cannot be published over HTTP (allowed: kernel_api, extension, local_process)";
            return false;
        }

        Write(drafts, ref f, f.HasTs ? f.Ts : nowMicros, defaultDetail, lineNumber);
        error = null;
        return true;
    }

    private static bool TryReadType(scoped ref Utf8JsonReader reader, Span<byte> scratch, out ReadOnlySpan<byte> type,
        out string? error)
    {
        ReadOnlySpan<byte> raw = reader.ValueSpan;
        if (reader.ValueIsEscaped)
        {
            if (raw.Length > scratch.Length)
            {
                type = default;
                error = "type is longer than 256 bytes";
                return false;
            }
            int n;
            try
            {
                n = reader.CopyString(scratch);
            }
            catch (InvalidOperationException)
            {
                // An escaped lone surrogate ("\ud800") has no UTF-8 form.
                type = default;
                error = "type is not a valid string (lone surrogate escape)";
                return false;
            }
            type = scratch[..n];
        }
        else
        {
            type = raw;
        }

        return IsValidType(type, out error);
    }

    /// <summary>The rules on an (unescaped) type: at most 256 bytes, no control characters.</summary>
    private static bool IsValidType(ReadOnlySpan<byte> type, out string? error)
    {
        if (type.Length > MaxTypeBytes)
        {
            error = "type is longer than 256 bytes";
            return false;
        }
        for (int i = 0; i < type.Length; i++)
        {
            byte b = type[i];
            // C0 controls, DEL, and the C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F).
            if (b < 0x20 || b == 0x7F || (b == 0xC2 && i + 1 < type.Length && type[i + 1] <= 0x9F))
            {
                error = "type must not contain control characters";
                return false;
            }
        }
        error = null;
        return true;
    }

    private static bool TryReadSource(scoped ref Utf8JsonReader reader, ReadOnlySpan<byte> json, ref Fields f,
        out string? error)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            error = "source must be an object";
            return false;
        }
        while (true)
        {
            reader.Read();
            if (reader.TokenType == JsonTokenType.EndObject) break;
            ReadOnlySpan<byte> name = reader.ValueIsEscaped ? default : reader.ValueSpan;
            reader.Read();
            if (name.SequenceEqual("kind"u8))
            {
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.String || reader.ValueIsEscaped ||
                    !EventVocabulary.TryParseSourceKind(reader.ValueSpan, out f.Kind))
                {
                    error = "unknown source.kind (allowed: kernel_api, extension, local_process)";
                    return false;
                }
                f.HasKind = true;
            }
            else if (name.SequenceEqual("event"u8))
            {
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.String)
                {
                    error = "source.event must be a string";
                    return false;
                }
                f.SourceEvent = RawString(ref reader, json);
            }
            else if (name.SequenceEqual("metadata"u8))
            {
                if (reader.TokenType == JsonTokenType.Null) continue;
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    error = "source.metadata must be an object of strings";
                    return false;
                }
                int start = (int)reader.TokenStartIndex;
                while (true)
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.EndObject) break;
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.String)
                    {
                        error = "source.metadata values must be strings";
                        return false;
                    }
                }
                f.Metadata = json[start..(int)reader.BytesConsumed];
            }
            else
            {
                reader.Skip();
            }
        }
        error = null;
        return true;
    }

    /// <summary>The string token exactly as sent, quotes included (valid JSON by construction).</summary>
    private static ReadOnlySpan<byte> RawString(scoped ref Utf8JsonReader reader, ReadOnlySpan<byte> json) =>
        json.Slice((int)reader.TokenStartIndex, reader.ValueSpan.Length + 2);

    private static void Write(EventDrafts drafts, ref Fields f, long ts, DetailLevel defaultDetail, int lineNumber)
    {
        int start = drafts.Position;
        ref EventDraft d = ref drafts.Add();
        d.Start = start;
        d.LineNumber = lineNumber;
        d.Category = f.HasCategory ? f.Category : EventVocabulary.CategoryFromType(f.Type);
        d.SourceKind = f.HasKind ? f.Kind : SourceKind.KernelApi;

        drafts.Write("{\"ts\":"u8);
        Span<byte> digits = drafts.GetSpan(20);
        Utf8Formatter.TryFormat(ts, digits, out int n);
        drafts.Advance(n);
        drafts.Write(",\"type\":\""u8);
        d.TypeStart = drafts.Position - start;
        WriteEscapedType(drafts, f.Type);
        d.TypeLength = drafts.Position - start - d.TypeStart;
        drafts.Write("\",\"category\":\""u8);
        drafts.Write(EventVocabulary.Utf8Name(d.Category));
        drafts.Write("\",\"detail_level\":\""u8);
        drafts.Write(EventVocabulary.Utf8Name(f.HasDetail ? f.Detail : defaultDetail));
        drafts.Write("\",\"source\":{\"kind\":\""u8);
        drafts.Write(EventVocabulary.Utf8Name(d.SourceKind));
        drafts.Write((byte)'"');
        if (!f.SourceEvent.IsEmpty)
        {
            drafts.Write(",\"event\":"u8);
            drafts.Write(f.SourceEvent);
        }
        if (!f.Metadata.IsEmpty)
        {
            drafts.Write(",\"metadata\":"u8);
            WriteMinified(drafts, f.Metadata);
        }
        drafts.Write((byte)'}');
        if (!f.Url.IsEmpty)
        {
            drafts.Write(",\"url\":"u8);
            drafts.Write(f.Url);
        }
        if (!f.Data.IsEmpty)
        {
            d.DataFieldStart = drafts.Position - start;
            drafts.Write(",\"data\":"u8);
            WriteMinified(drafts, f.Data);
        }
        else
        {
            d.DataFieldStart = -1;
        }
        drafts.Write((byte)'}');
        d.Length = drafts.Position - start;
    }

    /// <summary>Writes the (unescaped) type, escaping only what JSON requires ('"' and '\').</summary>
    private static void WriteEscapedType(EventDrafts drafts, ReadOnlySpan<byte> type)
    {
        if (type.IndexOfAny((byte)'"', (byte)'\\') < 0)
        {
            drafts.Write(type);
        }
        else
        {
            foreach (byte b in type)
            {
                if (b is (byte)'"' or (byte)'\\') drafts.Write((byte)'\\');
                drafts.Write(b);
            }
        }
    }

    /// <summary>The escaped form of a type, as it appears in envelopes (for type filters).</summary>
    public static byte[] EscapeType(string type)
    {
        byte[] utf8 = System.Text.Encoding.UTF8.GetBytes(type);
        var escaped = new List<byte>(utf8.Length);
        foreach (byte b in utf8)
        {
            if (b is (byte)'"' or (byte)'\\') escaped.Add((byte)'\\');
            escaped.Add(b);
        }
        return escaped.ToArray();
    }

    /// <summary>
    /// Copies a validated JSON value without insignificant whitespace. Strings are copied as-is
    /// (a raw '"' inside a string is always escaped, so the in-string state is exact).
    /// </summary>
    internal static void WriteMinified(EventDrafts drafts, ReadOnlySpan<byte> json)
    {
        // Fast path: nothing to strip.
        if (json.IndexOfAny(" \t\r\n"u8) < 0)
        {
            drafts.Write(json);
            return;
        }
        Span<byte> dest = drafts.GetSpan(json.Length);
        int w = 0;
        int i = 0;
        while (i < json.Length)
        {
            // Outside strings: copy up to the next quote or whitespace, drop the whitespace.
            int stop = json[i..].IndexOfAny(QuoteOrWhitespace);
            if (stop < 0)
            {
                stop = json.Length - i;
            }
            json.Slice(i, stop).CopyTo(dest[w..]);
            w += stop;
            i += stop;
            if (i == json.Length)
            {
                break;
            }
            if (json[i] != (byte)'"')
            {
                i++;
                continue;
            }
            // A string: copy it whole, through its closing quote (escaped quotes are stepped over).
            int end = i + 1;
            while (true)
            {
                end += json[end..].IndexOfAny((byte)'"', (byte)'\\');
                if (json[end] == (byte)'\\')
                {
                    end += 2;
                    continue;
                }
                end++;
                break;
            }
            json[i..end].CopyTo(dest[w..]);
            w += end - i;
            i = end;
        }
        drafts.Advance(w);
    }
}
