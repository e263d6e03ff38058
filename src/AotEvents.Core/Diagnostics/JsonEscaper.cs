using System.Text.Encodings.Web;

namespace AotEvents.Diagnostics;

/// <summary>
/// Escapes exactly what <see cref="JavaScriptEncoder.Default"/> escapes — every character outside
/// printable ASCII, and <c>" &amp; ' + &lt; &gt; \ `</c> — in the same form (<c>\n</c>-style short escapes
/// for <c>\b \t \n \f \r \\</c>, <c>\uXXXX</c> with upper-case hex otherwise), without building the
/// default encoder's code point bitmaps (~35 KB allocated on the first JSON string written). Used for
/// the daemon's own JSON (API answers and log lines); tests compare it with the default encoder over
/// every Unicode scalar.
/// </summary>
public sealed class JsonEscaper : JavaScriptEncoder
{
    public static readonly JsonEscaper Instance = new();

    private JsonEscaper()
    {
    }

    // "\uXXXX" per UTF-16 code unit.
    public override int MaxOutputCharactersPerInputCharacter => 6;

    public override bool WillEncode(int unicodeScalar) =>
        unicodeScalar is < 0x20 or > 0x7E or '"' or '&' or '\'' or '+' or '<' or '>' or '\\' or '`';

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        for (int i = 0; i < textLength; i++)
            if (WillEncode(text[i])) return i;
        return -1;
    }

    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text)
    {
        // Every byte of a multi-byte sequence is > 0x7E, so a byte-wise scan finds the same index.
        for (int i = 0; i < utf8Text.Length; i++)
            if (WillEncode(utf8Text[i])) return i;
        return -1;
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        var into = new Span<char>(buffer, bufferLength);
        numberOfCharactersWritten = 0;
        if (!WillEncode(unicodeScalar))
        {
            if (into.IsEmpty) return false;
            into[0] = (char)unicodeScalar;
            numberOfCharactersWritten = 1;
            return true;
        }
        char shortForm = unicodeScalar switch
        {
            '\b' => 'b',
            '\t' => 't',
            '\n' => 'n',
            '\f' => 'f',
            '\r' => 'r',
            '\\' => '\\',
            _ => '\0',
        };
        if (shortForm != '\0')
        {
            if (into.Length < 2) return false;
            into[0] = '\\';
            into[1] = shortForm;
            numberOfCharactersWritten = 2;
            return true;
        }
        if (unicodeScalar < 0x10000) return TryHex(unicodeScalar, into, ref numberOfCharactersWritten);
        int v = unicodeScalar - 0x10000;
        return TryHex(0xD800 + (v >> 10), into, ref numberOfCharactersWritten)
            && TryHex(0xDC00 + (v & 0x3FF), into[6..], ref numberOfCharactersWritten);
    }

    private static bool TryHex(int value, Span<char> into, ref int written)
    {
        if (into.Length < 6) return false;
        into[0] = '\\';
        into[1] = 'u';
        for (int i = 5; i >= 2; i--, value >>= 4)
            into[i] = (char)((value & 0xF) < 10 ? '0' + (value & 0xF) : 'A' + (value & 0xF) - 10);
        written += 6;
        return true;
    }
}
