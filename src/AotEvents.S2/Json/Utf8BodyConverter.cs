using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace AotEvents.S2.Json;

/// <summary>
/// A record body in format <c>raw</c>: a JSON string whose text is the body. Reads unescape straight into
/// one exact-size byte array (no intermediate <see cref="string"/>); writes escape the UTF-8 bytes as given.
/// </summary>
internal sealed class Utf8BodyConverter : JsonConverter<ReadOnlyMemory<byte>>
{
    public override bool HandleNull => true;

    public override ReadOnlyMemory<byte> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => ReadBody(ref reader);

    public override void Write(Utf8JsonWriter writer, ReadOnlyMemory<byte> value, JsonSerializerOptions options)
        => writer.WriteStringValue(value.Span);

    internal static byte[] ReadBody(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return [];
        }

        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException("record body must be a string");
        }

        if (!reader.HasValueSequence && !reader.ValueIsEscaped)
        {
            return reader.ValueSpan.ToArray();
        }

        // Unescaped text is never longer than its escaped form.
        int max = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
        byte[] rented = ArrayPool<byte>.Shared.Rent(Math.Max(max, 1));
        try
        {
            int written = reader.CopyString(rented);
            return rented.AsSpan(0, written).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}

/// <summary>
/// The <c>records</c> array of an append: one <c>{"body":"…"}</c> object per body, written straight from
/// the caller's buffers (no per-record objects, no strings).
/// </summary>
internal sealed class RawRecordListConverter : JsonConverter<IReadOnlyList<ReadOnlyMemory<byte>>>
{
    private static readonly JsonEncodedText Body = JsonEncodedText.Encode("body");

    public override IReadOnlyList<ReadOnlyMemory<byte>> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => throw new NotSupportedException("append records are only written");

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<ReadOnlyMemory<byte>> value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        for (int i = 0; i < value.Count; i++)
        {
            writer.WriteStartObject();
            writer.WriteString(Body, value[i].Span);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }
}
