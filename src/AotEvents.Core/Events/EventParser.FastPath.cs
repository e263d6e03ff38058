using System.Buffers;

namespace AotEvents.Events;

/// <summary>
/// The fast path: one forward scan of the bytes for the shape producers actually send, without a
/// general JSON reader. It only ever says "accepted, here is the draft" or "not mine": anything
/// unusual (an error of any kind, a <c>null</c> field, an escape in a member name or in <c>type</c>,
/// a <c>ts</c> with a fraction, a surrogate escape, nesting deeper than 64, …) is left to the
/// <see cref="System.Text.Json.Utf8JsonReader"/> path, which decides it and words the error. So there is one
/// implementation of every rule that can refuse, and the scan is kept honest by a differential
/// test against that path (same verdict, same bytes out).
/// </summary>
public static partial class EventParser
{
    private const int FastPathMaxDepth = 64;

    /// <summary>What may end a run of plain string bytes: '"', '\', and the control bytes JSON forbids raw.</summary>
    private static readonly SearchValues<byte> StringStops = SearchValues.Create(
        "\"\\\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000A\u000B\u000C\u000D\u000E\u000F\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F"u8);

    internal static bool TryParseFast(ReadOnlySpan<byte> json, long nowMicros, DetailLevel defaultDetail,
        EventDrafts drafts, int lineNumber)
    {
        int i = SkipWhitespace(json, 0);
        if (!TryScanObjectStart(json, ref i, out bool empty) || empty) return false; // empty: no type, the reader says so
        var f = new Fields();
        while (true)
        {
            if (!TryScanPlainString(json, ref i, out ReadOnlySpan<byte> name)) return false;
            if (!TryScanColon(json, ref i)) return false;

            if (name.SequenceEqual("ts"u8))
            {
                if (!TryScanTs(json, ref i, out long ts)) return false;
                f.Ts = ts;
                f.HasTs = ts != 0;
            }
            else if (name.SequenceEqual("type"u8))
            {
                if (!TryScanPlainString(json, ref i, out ReadOnlySpan<byte> type) || !IsValidType(type, out _)) return false;
                f.Type = type;
                f.HasType = type.Length > 0;
            }
            else if (name.SequenceEqual("category"u8))
            {
                if (!TryScanPlainString(json, ref i, out ReadOnlySpan<byte> value) ||
                    !EventVocabulary.TryParseCategory(value, out f.Category)) return false;
                f.HasCategory = true;
            }
            else if (name.SequenceEqual("detail_level"u8))
            {
                if (!TryScanPlainString(json, ref i, out ReadOnlySpan<byte> value) ||
                    !EventVocabulary.TryParseDetailLevel(value, out f.Detail)) return false;
                f.HasDetail = true;
            }
            else if (name.SequenceEqual("source"u8))
            {
                if (f.SeenSource || !TryScanSource(json, ref i, ref f)) return false;
                f.SeenSource = true;
            }
            else if (name.SequenceEqual("url"u8))
            {
                int start = i;
                if (!TryScanString(json, ref i)) return false;
                f.Url = json[start..i];
            }
            else if (name.SequenceEqual("data"u8))
            {
                if (f.SeenData) return false;
                f.SeenData = true;
                int start = i;
                if (!TrySkipValue(json, ref i, 1)) return false;
                ReadOnlySpan<byte> data = json[start..i];
                f.Data = data.SequenceEqual("null"u8) ? default : data;
            }
            else if (!TrySkipValue(json, ref i, 1))
            {
                return false;
            }

            if (!TryScanMemberEnd(json, ref i, out bool more)) return false;
            if (!more) break;
        }

        if (SkipWhitespace(json, i) != json.Length || !f.HasType || (f.HasKind && f.Kind == SourceKind.Cdp)) return false;
        Write(drafts, ref f, f.HasTs ? f.Ts : nowMicros, defaultDetail, lineNumber);
        return true;
    }

    /// <summary><c>source</c>: an object with kind (vocabulary), event (string) and metadata (object of strings).</summary>
    private static bool TryScanSource(ReadOnlySpan<byte> json, scoped ref int i, ref Fields f)
    {
        if (!TryScanObjectStart(json, ref i, out bool empty)) return false;
        if (empty) return true;
        while (true)
        {
            if (!TryScanPlainString(json, ref i, out ReadOnlySpan<byte> name)) return false;
            if (!TryScanColon(json, ref i)) return false;
            if (name.SequenceEqual("kind"u8))
            {
                if (!TryScanPlainString(json, ref i, out ReadOnlySpan<byte> value) ||
                    !EventVocabulary.TryParseSourceKind(value, out f.Kind)) return false;
                f.HasKind = true;
            }
            else if (name.SequenceEqual("event"u8))
            {
                int start = i;
                if (!TryScanString(json, ref i)) return false;
                f.SourceEvent = json[start..i];
            }
            else if (name.SequenceEqual("metadata"u8))
            {
                int start = i;
                if (!TryScanStringObject(json, ref i)) return false;
                f.Metadata = json[start..i];
            }
            else if (!TrySkipValue(json, ref i, 2))
            {
                return false;
            }
            if (!TryScanMemberEnd(json, ref i, out bool more)) return false;
            if (!more) return true;
        }
    }

    /// <summary>An object whose values are all strings (names may be escaped).</summary>
    private static bool TryScanStringObject(ReadOnlySpan<byte> json, scoped ref int i)
    {
        if (!TryScanObjectStart(json, ref i, out bool empty)) return false;
        if (empty) return true;
        while (true)
        {
            if (!TryScanString(json, ref i) || !TryScanColon(json, ref i) || !TryScanString(json, ref i)) return false;
            if (!TryScanMemberEnd(json, ref i, out bool more)) return false;
            if (!more) return true;
        }
    }

    /// <summary>'{' and the whitespace after it; <paramref name="empty"/> when '}' follows at once (then consumed too).</summary>
    private static bool TryScanObjectStart(ReadOnlySpan<byte> json, scoped ref int i, out bool empty)
    {
        empty = false;
        if (i == json.Length || json[i] != (byte)'{') return false;
        i = SkipWhitespace(json, i + 1);
        if (i < json.Length && json[i] == (byte)'}')
        {
            i++;
            empty = true;
        }
        return true;
    }

    /// <summary>After a member's value: ',' (more follow; <paramref name="i"/> at the next name) or '}' (consumed).</summary>
    private static bool TryScanMemberEnd(ReadOnlySpan<byte> json, scoped ref int i, out bool more)
    {
        i = SkipWhitespace(json, i);
        more = false;
        if (i == json.Length) return false;
        if (json[i] == (byte)'}')
        {
            i++;
            return true;
        }
        if (json[i] != (byte)',') return false;
        i = SkipWhitespace(json, i + 1);
        more = true;
        return true;
    }

    private static bool TryScanColon(ReadOnlySpan<byte> json, scoped ref int i)
    {
        i = SkipWhitespace(json, i);
        if (i == json.Length || json[i] != (byte)':') return false;
        i = SkipWhitespace(json, i + 1);
        return true;
    }

    /// <summary><c>ts</c> in its plain form: up to 18 digits, no sign, fraction or exponent (anything else: the reader decides).</summary>
    private static bool TryScanTs(ReadOnlySpan<byte> json, scoped ref int i, out long ts)
    {
        ts = 0;
        int start = i;
        while (i < json.Length && (uint)(json[i] - '0') <= 9)
        {
            ts = (ts * 10) + (json[i] - '0');
            i++;
        }
        int digits = i - start;
        return digits is > 0 and <= 18 && (digits == 1 || json[start] != (byte)'0') && IsValueEnd(json, i);
    }

    /// <summary>A string without escapes; <paramref name="value"/> is its content (between the quotes).</summary>
    private static bool TryScanPlainString(ReadOnlySpan<byte> json, scoped ref int i, out ReadOnlySpan<byte> value)
    {
        value = default;
        if (i == json.Length || json[i] != (byte)'"') return false;
        int end = IndexOfStringStop(json[(i + 1)..]);
        if (end < 0 || json[i + 1 + end] != (byte)'"') return false;
        value = json.Slice(i + 1, end);
        i += end + 2;
        return true;
    }

    /// <summary>Any valid string token (escapes checked, surrogate escapes left to the reader).</summary>
    private static bool TryScanString(ReadOnlySpan<byte> json, scoped ref int i)
    {
        if (i == json.Length || json[i] != (byte)'"') return false;
        i++;
        while (true)
        {
            int stop = IndexOfStringStop(json[i..]);
            if (stop < 0) return false;
            i += stop;
            byte b = json[i];
            if (b == (byte)'"')
            {
                i++;
                return true;
            }
            if (b != (byte)'\\' || i + 1 == json.Length) return false; // a raw control byte, or a cut-off escape
            switch (json[i + 1])
            {
                case (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t':
                    i += 2;
                    break;
                case (byte)'u':
                    if (i + 6 > json.Length) return false;
                    int code = 0;
                    for (int k = i + 2; k < i + 6; k++)
                    {
                        int digit = HexValue(json[k]);
                        if (digit < 0) return false;
                        code = (code << 4) | digit;
                    }
                    if (code is >= 0xD800 and <= 0xDFFF) return false; // pairing rules: the reader's call
                    i += 6;
                    break;
                default:
                    return false;
            }
        }
    }

    /// <summary>
    /// The first '"', '\' or control byte. Most strings in an event are short (names, kinds, types): a plain loop
    /// finds their end sooner than setting up a vector search, which takes over after 16 bytes.
    /// </summary>
    private static int IndexOfStringStop(ReadOnlySpan<byte> s)
    {
        int head = Math.Min(s.Length, 16);
        for (int k = 0; k < head; k++)
        {
            byte b = s[k];
            if (b < 0x20 || b == (byte)'"' || b == (byte)'\\') return k;
        }
        if (s.Length == head) return -1;
        int rest = s[head..].IndexOfAny(StringStops);
        return rest < 0 ? -1 : head + rest;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    /// <summary>Any JSON value up to <see cref="FastPathMaxDepth"/> levels deep.</summary>
    private static bool TrySkipValue(ReadOnlySpan<byte> json, scoped ref int i, int depth)
    {
        if (i == json.Length) return false;
        switch (json[i])
        {
            case (byte)'"':
                return TryScanString(json, ref i);
            case (byte)'{':
                if (depth >= FastPathMaxDepth || !TryScanObjectStart(json, ref i, out bool empty)) return false;
                if (empty) return true;
                while (true)
                {
                    if (!TryScanString(json, ref i) || !TryScanColon(json, ref i) || !TrySkipValue(json, ref i, depth + 1)) return false;
                    if (!TryScanMemberEnd(json, ref i, out bool more)) return false;
                    if (!more) return true;
                }
            case (byte)'[':
                if (depth >= FastPathMaxDepth) return false;
                i = SkipWhitespace(json, i + 1);
                if (i < json.Length && json[i] == (byte)']')
                {
                    i++;
                    return true;
                }
                while (true)
                {
                    if (!TrySkipValue(json, ref i, depth + 1)) return false;
                    i = SkipWhitespace(json, i);
                    if (i == json.Length) return false;
                    if (json[i] == (byte)']')
                    {
                        i++;
                        return true;
                    }
                    if (json[i] != (byte)',') return false;
                    i = SkipWhitespace(json, i + 1);
                }
            case (byte)'t':
                return TryScanLiteral(json, ref i, "true"u8);
            case (byte)'f':
                return TryScanLiteral(json, ref i, "false"u8);
            case (byte)'n':
                return TryScanLiteral(json, ref i, "null"u8);
            default:
                return TryScanNumber(json, ref i);
        }
    }

    private static bool TryScanLiteral(ReadOnlySpan<byte> json, scoped ref int i, ReadOnlySpan<byte> literal)
    {
        if (!json[i..].StartsWith(literal) || !IsValueEnd(json, i + literal.Length)) return false;
        i += literal.Length;
        return true;
    }

    /// <summary>RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?</summary>
    private static bool TryScanNumber(ReadOnlySpan<byte> json, scoped ref int i)
    {
        int p = i;
        if (p < json.Length && json[p] == (byte)'-') p++;
        if (p == json.Length) return false;
        if (json[p] == (byte)'0')
        {
            p++;
        }
        else
        {
            int digits = CountDigits(json, p);
            if (digits == 0) return false;
            p += digits;
        }
        if (p < json.Length && json[p] == (byte)'.')
        {
            int digits = CountDigits(json, p + 1);
            if (digits == 0) return false;
            p += 1 + digits;
        }
        if (p < json.Length && (json[p] | 0x20) == (byte)'e')
        {
            p++;
            if (p < json.Length && json[p] is (byte)'+' or (byte)'-') p++;
            int digits = CountDigits(json, p);
            if (digits == 0) return false;
            p += digits;
        }
        if (!IsValueEnd(json, p)) return false;
        i = p;
        return true;
    }

    private static int CountDigits(ReadOnlySpan<byte> json, int from)
    {
        int p = from;
        while (p < json.Length && (uint)(json[p] - '0') <= 9) p++;
        return p - from;
    }

    /// <summary>A number or literal must be followed by a delimiter (so "01", "nullx" and "1true" are not values).</summary>
    private static bool IsValueEnd(ReadOnlySpan<byte> json, int i) =>
        i == json.Length || json[i] is (byte)',' or (byte)'}' or (byte)']' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    private static int SkipWhitespace(ReadOnlySpan<byte> json, int i)
    {
        while (i < json.Length && json[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') i++;
        return i;
    }
}
