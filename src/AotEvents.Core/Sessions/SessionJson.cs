using System.Buffers;
using System.Text.Json;
using AotEvents.Events;

namespace AotEvents;

/// <summary>
/// The JSON the daemon answers and keeps — the session object of SPEC §2, <c>{"message"}</c>, batch
/// results, <c>{"from_seq","to_seq","count"}</c>, the <c>POST /events/start</c> body and
/// <c>session.json</c> — written with <see cref="Utf8JsonWriter"/> and read with
/// <see cref="Utf8JsonReader"/>. These shapes are small and fixed, and going through
/// <c>JsonSerializer</c> (even source-generated) put its metadata, converters and caches into the
/// binary and into memory at the first request.
/// </summary>
public static class ApiJson
{
    // The same escaping as the serializer's default encoder, without building that encoder.
    private static readonly JsonWriterOptions Options = new() { Encoder = Diagnostics.JsonEscaper.Instance };

    /// <summary>The session object: <c>{"id","status","created_at","config":{"categories","detail_level"},"first_seq","last_seq","published"}</c>.</summary>
    public static byte[] Session(CaptureSession s)
    {
        var buffer = new ArrayBufferWriter<byte>(320);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteString("id"u8, s.Id);
            json.WriteString("status"u8, s.IsStopped ? "stopped"u8 : "running"u8);
            Span<byte> createdAt = stackalloc byte[24];
            json.WriteString("created_at"u8, FormatUtcMillis(s.CreatedAt, createdAt));
            json.WriteStartObject("config"u8);
            json.WriteStartArray("categories"u8);
            for (int c = 0; c < EventVocabulary.CategoryCount; c++)
                if ((s.CategoryMask & (1 << c)) != 0) json.WriteStringValue(EventVocabulary.Name((EventCategory)c));
            json.WriteEndArray();
            json.WriteString("detail_level"u8, EventVocabulary.Name(s.DetailLevel));
            json.WriteEndObject();
            WriteNumberOrNull(json, "first_seq"u8, s.FirstSeq);
            WriteNumberOrNull(json, "last_seq"u8, s.LastSeqOrNull);
            json.WriteNumber("published"u8, s.Published);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The session's category names, in the order the session object lists them.</summary>
    public static List<string> CategoryNames(CaptureSession s)
    {
        var names = new List<string>(EventVocabulary.CategoryCount);
        for (int c = 0; c < EventVocabulary.CategoryCount; c++)
            if ((s.CategoryMask & (1 << c)) != 0) names.Add(EventVocabulary.Name((EventCategory)c));
        return names;
    }

    /// <summary><c>{"message":"…"}</c>.</summary>
    public static byte[] Message(string message)
    {
        var buffer = new ArrayBufferWriter<byte>(32 + message.Length);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteString("message"u8, message);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary><c>{"accepted","first_seq","last_seq"}</c>: the answer to a batch publish.</summary>
    public static byte[] BatchResult(int accepted, long firstSeq, long lastSeq)
    {
        var buffer = new ArrayBufferWriter<byte>(80);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteNumber("accepted"u8, accepted);
            json.WriteNumber("first_seq"u8, firstSeq);
            json.WriteNumber("last_seq"u8, lastSeq);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary><c>{"from_seq","to_seq","count"}</c>: the data of a <c>dropped</c> frame.</summary>
    public static byte[] Dropped(long fromSeq, long toSeq)
    {
        var buffer = new ArrayBufferWriter<byte>(80);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteNumber("from_seq"u8, fromSeq);
            json.WriteNumber("to_seq"u8, toSeq);
            json.WriteNumber("count"u8, toSeq - fromSeq + 1);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Reads the body of <c>POST /events/start</c>: <c>{"categories":[…]|null,"detail_level":"…"|null}</c>,
    /// or <c>null</c>. Other members are ignored; a later duplicate wins. Returns false with a reason when
    /// the body is not JSON or not that shape (category and level names are checked by the caller).
    /// </summary>
    public static bool TryReadStartRequest(ReadOnlySpan<byte> body, out List<string?>? categories, out string? detailLevel, out string? error)
    {
        categories = null;
        detailLevel = null;
        error = null;
        try
        {
            var reader = new Utf8JsonReader(body);
            reader.Read();
            if (reader.TokenType == JsonTokenType.Null) return AtEnd(ref reader);
            if (reader.TokenType != JsonTokenType.StartObject) return Fail("the body must be a JSON object", out error);
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("categories"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Null)
                    {
                        categories = null;
                        continue;
                    }
                    if (reader.TokenType != JsonTokenType.StartArray) return Fail("categories must be an array of strings", out error);
                    categories = [];
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null)) return Fail("categories must be an array of strings", out error);
                        categories.Add(reader.GetString());
                    }
                }
                else if (reader.ValueTextEquals("detail_level"u8))
                {
                    reader.Read();
                    if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null)) return Fail("detail_level must be a string", out error);
                    detailLevel = reader.GetString();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            return AtEnd(ref reader);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return Fail(e.Message, out error);
        }
    }

    /// <summary>What <c>session.json</c> holds about the current (or last) session.</summary>
    public readonly record struct SessionFileData(string Id, DateTimeOffset CreatedAt, int CategoryMask, string DetailLevel,
        long StartAfterSeq, bool Stopped, long LastSeq);

    /// <summary><c>session.json</c>: <c>{"id","created_at","category_mask","detail_level","start_after_seq","stopped","last_seq"}</c>.</summary>
    public static byte[] WriteSessionFile(in SessionFileData file)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteString("id"u8, file.Id);
            json.WriteString("created_at"u8, file.CreatedAt);
            json.WriteNumber("category_mask"u8, file.CategoryMask);
            json.WriteString("detail_level"u8, file.DetailLevel);
            json.WriteNumber("start_after_seq"u8, file.StartAfterSeq);
            json.WriteBoolean("stopped"u8, file.Stopped);
            json.WriteNumber("last_seq"u8, file.LastSeq);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Reads <c>session.json</c> (as written by <see cref="WriteSessionFile"/> or by earlier versions).
    /// Null for the JSON literal <c>null</c>; <see cref="JsonException"/> when it is not that shape or
    /// lacks <c>id</c>, <c>created_at</c> or <c>detail_level</c>.
    /// </summary>
    public static SessionFileData? ReadSessionFile(ReadOnlySpan<byte> utf8)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8);
            reader.Read();
            if (reader.TokenType == JsonTokenType.Null)
            {
                if (reader.Read()) throw new JsonException("session.json: content after the value");
                return null;
            }
            if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("session.json: not a JSON object");
            string? id = null, detail = null;
            DateTimeOffset? createdAt = null;
            int mask = 0;
            long startAfter = 0, lastSeq = 0;
            bool stopped = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("id"u8)) id = RequiredString(ref reader, "id");
                else if (reader.ValueTextEquals("created_at"u8)) createdAt = Next(ref reader).GetDateTimeOffset();
                else if (reader.ValueTextEquals("category_mask"u8)) mask = Next(ref reader).GetInt32();
                else if (reader.ValueTextEquals("detail_level"u8)) detail = RequiredString(ref reader, "detail_level");
                else if (reader.ValueTextEquals("start_after_seq"u8)) startAfter = Next(ref reader).GetInt64();
                else if (reader.ValueTextEquals("stopped"u8)) stopped = Next(ref reader).GetBoolean();
                else if (reader.ValueTextEquals("last_seq"u8)) lastSeq = Next(ref reader).GetInt64();
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (reader.Read()) throw new JsonException("session.json: content after the value");
            if (id is null || createdAt is null || detail is null)
                throw new JsonException("session.json: id, created_at and detail_level are required");
            return new SessionFileData(id, createdAt.Value, mask, detail, startAfter, stopped, lastSeq);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new JsonException("session.json: " + e.Message, e);
        }
    }

    private static ref Utf8JsonReader Next(ref Utf8JsonReader reader)
    {
        reader.Read();
        return ref reader;
    }

    private static string RequiredString(ref Utf8JsonReader reader, string name)
    {
        reader.Read();
        return reader.TokenType == JsonTokenType.String
            ? reader.GetString()!
            : throw new JsonException($"session.json: {name} must be a string");
    }

    private static bool AtEnd(ref Utf8JsonReader reader)
    {
        // Anything but whitespace after the value makes the reader throw.
        reader.Read();
        return true;
    }

    private static bool Fail(string reason, out string? error)
    {
        error = reason;
        return false;
    }

    private static void WriteNumberOrNull(Utf8JsonWriter json, ReadOnlySpan<byte> name, long? value)
    {
        if (value is { } v) json.WriteNumber(name, v);
        else json.WriteNull(name);
    }

    /// <summary><c>yyyy-MM-ddTHH:mm:ss.fffZ</c> (UTC, milliseconds) into <paramref name="into"/> (24 bytes).</summary>
    internal static ReadOnlySpan<byte> FormatUtcMillis(DateTimeOffset time, Span<byte> into)
    {
        DateTime t = time.UtcDateTime;
        Digits(into[..4], t.Year);
        into[4] = (byte)'-';
        Digits(into.Slice(5, 2), t.Month);
        into[7] = (byte)'-';
        Digits(into.Slice(8, 2), t.Day);
        into[10] = (byte)'T';
        Digits(into.Slice(11, 2), t.Hour);
        into[13] = (byte)':';
        Digits(into.Slice(14, 2), t.Minute);
        into[16] = (byte)':';
        Digits(into.Slice(17, 2), t.Second);
        into[19] = (byte)'.';
        Digits(into.Slice(20, 3), t.Millisecond);
        into[23] = (byte)'Z';
        return into[..24];
    }

    private static void Digits(Span<byte> into, int value)
    {
        for (int i = into.Length - 1; i >= 0; i--)
        {
            into[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }
}
