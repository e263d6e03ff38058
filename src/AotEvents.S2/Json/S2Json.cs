using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace AotEvents.S2.Json;

/// <summary>
/// The S2 shapes the client writes and reads (openapi.json, <c>s2-format: raw</c>), with
/// <see cref="Utf8JsonWriter"/> and <see cref="Utf8JsonReader"/> directly: <c>AppendInput</c>,
/// <c>CreateStreamRequest</c>, <c>AppendAck</c>, <c>ReadBatch</c>, <c>TailResponse</c> and the error
/// bodies. Members are snake_case and matched exactly; unknown members are skipped; a member that is
/// absent or <c>null</c> reads as its default; a member of the wrong JSON type, a number that is not an
/// integer, or anything after the value is a <see cref="JsonException"/> (as System.Text.Json's
/// serializer answered, whose metadata and converters the daemon no longer carries).
/// </summary>
internal static class S2Json
{
    /// <summary>Parses a whole answer body; null for the JSON literal <c>null</c>.</summary>
    internal delegate T? Parser<T>(ReadOnlySpan<byte> json) where T : class;

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        // Envelopes are JSON text: keep '"', '<', non-ASCII etc. as compact as JSON allows.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    /// <summary><c>{"records":[{"body":"…"},…],"match_seq_num":n}</c> (<c>match_seq_num</c> only when given).</summary>
    internal static void WriteAppendInput(IBufferWriter<byte> into, IReadOnlyList<ReadOnlyMemory<byte>> bodies, long? matchSeqNum)
    {
        using var writer = new Utf8JsonWriter(into, WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("records"u8);
        for (int i = 0; i < bodies.Count; i++)
        {
            writer.WriteStartObject();
            writer.WriteString("body"u8, bodies[i].Span);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        if (matchSeqNum is { } m)
        {
            writer.WriteNumber("match_seq_num"u8, m);
        }
        writer.WriteEndObject();
    }

    /// <summary><c>{"stream":"…"}</c> (default stream configuration).</summary>
    internal static void WriteCreateStream(IBufferWriter<byte> into, string stream)
    {
        using var writer = new Utf8JsonWriter(into, WriterOptions);
        writer.WriteStartObject();
        writer.WriteString("stream"u8, stream);
        writer.WriteEndObject();
    }

    /// <summary><c>AppendAck</c>: <c>{"start":pos,"end":pos,"tail":pos}</c>.</summary>
    internal static S2AppendAck? ReadAppendAck(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        if (!StartRoot(ref reader))
        {
            return null;
        }

        S2StreamPosition start = default, end = default, tail = default;
        while (NextMember(ref reader))
        {
            if (reader.ValueTextEquals("start"u8))
            {
                start = Position(ref reader) ?? default;
            }
            else if (reader.ValueTextEquals("end"u8))
            {
                end = Position(ref reader) ?? default;
            }
            else if (reader.ValueTextEquals("tail"u8))
            {
                tail = Position(ref reader) ?? default;
            }
            else
            {
                SkipValue(ref reader);
            }
        }

        EndRoot(ref reader);
        return new S2AppendAck(start, end, tail);
    }

    /// <summary><c>ReadBatch</c>: <c>{"records":[{"seq_num","timestamp","body"},…],"tail":pos|null}</c>.</summary>
    internal static S2ReadBatch? ReadReadBatch(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        if (!StartRoot(ref reader))
        {
            return null;
        }

        List<S2Record>? records = null;
        S2StreamPosition? tail = null;
        while (NextMember(ref reader))
        {
            if (reader.ValueTextEquals("records"u8))
            {
                records = Records(ref reader);
            }
            else if (reader.ValueTextEquals("tail"u8))
            {
                tail = Position(ref reader);
            }
            else
            {
                SkipValue(ref reader);
            }
        }

        EndRoot(ref reader);
        return new S2ReadBatch(records!, tail);
    }

    /// <summary>
    /// <c>TailResponse</c> (the check-tail answer) and the members error bodies may carry: <c>tail</c>
    /// (416), <c>seq_num_mismatch</c> / <c>fencing_token_mismatch</c> (412), <c>code</c>, <c>message</c>.
    /// </summary>
    internal sealed record Answer(S2StreamPosition? Tail, long? SeqNumMismatch, string? FencingTokenMismatch, string? Code, string? Message);

    /// <summary>The check-tail answer: <c>{"tail":pos}</c>.</summary>
    internal static Answer? ReadTail(ReadOnlySpan<byte> json) => ReadAnswer(json, tail: true, conditionFailed: false);

    /// <summary>
    /// An error body: <c>ErrorInfo</c>, plus <c>tail</c> for a 416 and the <c>AppendConditionFailed</c>
    /// members for a 412.
    /// </summary>
    internal static Answer? ReadError(ReadOnlySpan<byte> json, int status) => ReadAnswer(json, tail: status == 416, conditionFailed: status == 412);

    private static Answer? ReadAnswer(ReadOnlySpan<byte> json, bool tail, bool conditionFailed)
    {
        var reader = new Utf8JsonReader(json);
        if (!StartRoot(ref reader))
        {
            return null;
        }

        S2StreamPosition? position = null;
        long? seqNumMismatch = null;
        string? fencingToken = null, code = null, message = null;
        while (NextMember(ref reader))
        {
            if (tail && reader.ValueTextEquals("tail"u8))
            {
                position = Position(ref reader);
            }
            else if (conditionFailed && reader.ValueTextEquals("seq_num_mismatch"u8))
            {
                seqNumMismatch = NullableInt64(ref reader);
            }
            else if (conditionFailed && reader.ValueTextEquals("fencing_token_mismatch"u8))
            {
                fencingToken = NullableString(ref reader);
            }
            else if (reader.ValueTextEquals("code"u8))
            {
                code = NullableString(ref reader);
            }
            else if (reader.ValueTextEquals("message"u8))
            {
                message = NullableString(ref reader);
            }
            else
            {
                SkipValue(ref reader);
            }
        }

        EndRoot(ref reader);
        return new Answer(position, seqNumMismatch, fencingToken, code, message);
    }

    /// <summary>Reads the root token: false for <c>null</c>, true at the start of an object.</summary>
    private static bool StartRoot(ref Utf8JsonReader reader)
    {
        Read(ref reader);
        if (reader.TokenType == JsonTokenType.Null)
        {
            EndRoot(ref reader);
            return false;
        }

        Expect(ref reader, JsonTokenType.StartObject);
        return true;
    }

    /// <summary>Nothing but whitespace may follow the root value (the reader throws otherwise).</summary>
    private static void EndRoot(ref Utf8JsonReader reader)
    {
        if (reader.Read())
        {
            throw new JsonException("content after the JSON value");
        }
    }

    /// <summary>Moves to the next member name of the current object; false at its end.</summary>
    private static bool NextMember(ref Utf8JsonReader reader)
    {
        Read(ref reader);
        return reader.TokenType == JsonTokenType.PropertyName;
    }

    private static void SkipValue(ref Utf8JsonReader reader)
    {
        Read(ref reader);
        reader.Skip();
    }

    private static S2StreamPosition? Position(ref Utf8JsonReader reader)
    {
        Read(ref reader);
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.StartObject);
        long seqNum = 0, timestamp = 0;
        while (NextMember(ref reader))
        {
            if (reader.ValueTextEquals("seq_num"u8))
            {
                seqNum = Int64(ref reader);
            }
            else if (reader.ValueTextEquals("timestamp"u8))
            {
                timestamp = Int64(ref reader);
            }
            else
            {
                SkipValue(ref reader);
            }
        }

        return new S2StreamPosition(seqNum, timestamp);
    }

    private static List<S2Record>? Records(ref Utf8JsonReader reader)
    {
        Read(ref reader);
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.StartArray);
        var records = new List<S2Record>();
        while (true)
        {
            Read(ref reader);
            if (reader.TokenType == JsonTokenType.EndArray)
            {
                return records;
            }

            Expect(ref reader, JsonTokenType.StartObject);
            long seqNum = 0, timestamp = 0;
            ReadOnlyMemory<byte> body = default;
            while (NextMember(ref reader))
            {
                if (reader.ValueTextEquals("seq_num"u8))
                {
                    seqNum = Int64(ref reader);
                }
                else if (reader.ValueTextEquals("timestamp"u8))
                {
                    timestamp = Int64(ref reader);
                }
                else if (reader.ValueTextEquals("body"u8))
                {
                    Read(ref reader);
                    body = ReadBody(ref reader);
                }
                else
                {
                    SkipValue(ref reader);
                }
            }

            records.Add(new S2Record(seqNum, timestamp, body));
        }
    }

    /// <summary>
    /// A record body in format <c>raw</c>: a JSON string whose text is the body (<c>null</c>: empty).
    /// Unescapes straight into one exact-size byte array (no intermediate <see cref="string"/>).
    /// </summary>
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
            int written = CopyString(ref reader, rented);
            return rented.AsSpan(0, written).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static int CopyString(ref Utf8JsonReader reader, byte[] into)
    {
        try
        {
            return reader.CopyString(into);
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    private static long Int64(ref Utf8JsonReader reader)
    {
        Read(ref reader);
        Expect(ref reader, JsonTokenType.Number);
        return reader.TryGetInt64(out long value) ? value : throw new JsonException("expected a 64-bit integer");
    }

    private static long? NullableInt64(ref Utf8JsonReader reader)
    {
        Read(ref reader);
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.Number);
        return reader.TryGetInt64(out long value) ? value : throw new JsonException("expected a 64-bit integer");
    }

    private static string? NullableString(ref Utf8JsonReader reader)
    {
        Read(ref reader);
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        Expect(ref reader, JsonTokenType.String);
        try
        {
            return reader.GetString();
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    private static void Read(ref Utf8JsonReader reader)
    {
        if (!reader.Read())
        {
            throw new JsonException("the JSON ends early");
        }
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type)
    {
        if (reader.TokenType != type)
        {
            throw new JsonException($"expected {type}, found {reader.TokenType} at byte {reader.TokenStartIndex}");
        }
    }
}
