using System.Text.Json;
using AotEvents.Events;

namespace AotEvents.Http.Sse;

/// <summary>
/// The optional filters of <c>GET /events/stream</c> (SPEC §4): category, type, source_kind and
/// capture_session_id, all combinable. Live envelopes are matched on the fields the pipeline kept
/// beside the bytes; envelopes replayed from disk are matched by reading their JSON.
/// </summary>
public sealed class StreamFilter
{
    public static readonly StreamFilter All = new();

    public int CategoryMask { get; init; } = EventVocabulary.AllCategoriesMask;
    public int SourceKindMask { get; init; } = 0b1111;

    /// <summary>Accepted types as they appear (escaped) in envelopes; null = any.</summary>
    public byte[][]? Types { get; init; }

    public string? CaptureSessionId
    {
        get => _captureSessionId;
        init
        {
            _captureSessionId = value;
            _captureSessionIdUtf8 = value is null ? null : System.Text.Encoding.UTF8.GetBytes(value);
        }
    }

    private readonly string? _captureSessionId;

    // Encoded once: replayed lines are compared as bytes, per line.
    private readonly byte[]? _captureSessionIdUtf8;

    public bool MatchesEverything =>
        CategoryMask == EventVocabulary.AllCategoriesMask && SourceKindMask == 0b1111 && Types is null &&
        CaptureSessionId is null;

    public bool Matches(in Envelope e)
    {
        if ((CategoryMask & (1 << (int)e.Category)) == 0) return false;
        if ((SourceKindMask & (1 << (int)e.SourceKind)) == 0) return false;
        if (CaptureSessionId is not null && !string.Equals(CaptureSessionId, e.Session.Id, StringComparison.Ordinal))
            return false;
        return Types is null || MatchesType(e.Type);
    }

    /// <summary>Matches an envelope line read back from a JSONL file.</summary>
    public bool Matches(ReadOnlySpan<byte> envelopeJson, EventCategory category)
    {
        if ((CategoryMask & (1 << (int)category)) == 0) return false;
        if (SourceKindMask == 0b1111 && Types is null && CaptureSessionId is null) return true;
        ReadEnvelopeFields(envelopeJson, out ReadOnlySpan<byte> sessionId, out ReadOnlySpan<byte> type,
            out SourceKind kind);
        if ((SourceKindMask & (1 << (int)kind)) == 0) return false;
        if (_captureSessionIdUtf8 is not null && !sessionId.SequenceEqual(_captureSessionIdUtf8))
            return false;
        return Types is null || MatchesType(type);
    }

    private bool MatchesType(ReadOnlySpan<byte> type)
    {
        foreach (byte[] t in Types!)
            if (type.SequenceEqual(t)) return true;
        return false;
    }

    /// <summary>Raw capture_session_id, event.type and event.source.kind of a daemon-written envelope.</summary>
    private static void ReadEnvelopeFields(ReadOnlySpan<byte> json, out ReadOnlySpan<byte> sessionId,
        out ReadOnlySpan<byte> type, out SourceKind kind)
    {
        sessionId = default;
        type = default;
        kind = SourceKind.KernelApi;
        var reader = new Utf8JsonReader(json);
        int depth = 0;
        bool inSource = false;
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    depth++;
                    break;
                case JsonTokenType.EndObject:
                    depth--;
                    inSource = false;
                    break;
                case JsonTokenType.PropertyName:
                    if (depth == 1 && reader.ValueTextEquals("capture_session_id"u8))
                    {
                        reader.Read();
                        sessionId = reader.ValueSpan;
                    }
                    else if (depth == 2 && reader.ValueTextEquals("type"u8))
                    {
                        reader.Read();
                        type = reader.ValueSpan;
                    }
                    else if (depth == 2 && reader.ValueTextEquals("source"u8))
                    {
                        inSource = true;
                    }
                    else if (depth == 3 && inSource && reader.ValueTextEquals("kind"u8))
                    {
                        reader.Read();
                        EventVocabulary.TryParseSourceKind(reader.ValueSpan, out kind);
                    }
                    else if (reader.ValueTextEquals("data"u8) || reader.ValueTextEquals("metadata"u8))
                    {
                        reader.Read();
                        reader.Skip();
                    }
                    break;
            }
        }
    }

    /// <summary>
    /// Parses the filter query parameters; null and an error message when a value is unknown.
    /// </summary>
    public static StreamFilter? Parse(string? categories, string? types, string? sourceKinds, string? sessionId,
        out string? error)
    {
        error = null;
        int categoryMask = EventVocabulary.AllCategoriesMask;
        if (!string.IsNullOrWhiteSpace(categories))
        {
            categoryMask = 0;
            foreach (string name in categories.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!EventVocabulary.TryParseCategory(name, out EventCategory c))
                {
                    error = $"unknown category in filter: {name}";
                    return null;
                }
                categoryMask |= 1 << (int)c;
            }
        }
        int kindMask = 0b1111;
        if (!string.IsNullOrWhiteSpace(sourceKinds))
        {
            kindMask = 0;
            foreach (string name in sourceKinds.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!EventVocabulary.TryParseSourceKind(name, out SourceKind k))
                {
                    error = $"unknown source_kind in filter: {name}";
                    return null;
                }
                kindMask |= 1 << (int)k;
            }
        }
        byte[][]? typeList = null;
        if (!string.IsNullOrEmpty(types))
        {
            string[] names = types.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            typeList = new byte[names.Length][];
            for (int i = 0; i < names.Length; i++) typeList[i] = EventParser.EscapeType(names[i]);
        }
        return new StreamFilter
        {
            CategoryMask = categoryMask,
            SourceKindMask = kindMask,
            Types = typeList,
            CaptureSessionId = string.IsNullOrEmpty(sessionId) ? null : sessionId,
        };
    }
}
