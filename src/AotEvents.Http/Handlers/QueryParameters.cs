using System.Text;

namespace AotEvents.Http.Handlers;

/// <summary>
/// The decoded <c>name=value</c> pairs of a query string, in order; repeated names are kept (the
/// archive's <c>category</c> may repeat). Built only for requests that have a query.
/// </summary>
internal sealed class QueryParameters
{
    public static readonly QueryParameters Empty = new([]);

    private readonly List<KeyValuePair<string, string>> _pairs;

    private QueryParameters(List<KeyValuePair<string, string>> pairs) => _pairs = pairs;

    public static QueryParameters Parse(ReadOnlySpan<byte> query)
    {
        if (query.IsEmpty) return Empty;
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (Range r in query.Split((byte)'&'))
        {
            ReadOnlySpan<byte> part = query[r];
            if (part.IsEmpty) continue;
            int eq = part.IndexOf((byte)'=');
            string name = Decode(eq < 0 ? part : part[..eq]);
            string value = eq < 0 ? "" : Decode(part[(eq + 1)..]);
            pairs.Add(new(name, value));
        }
        return new QueryParameters(pairs);
    }

    /// <summary>The first value of <paramref name="name"/>, or null.</summary>
    public string? this[string name]
    {
        get
        {
            foreach (var pair in _pairs)
                if (pair.Key == name) return pair.Value;
            return null;
        }
    }

    public IEnumerable<string> All(string name)
    {
        foreach (var pair in _pairs)
            if (pair.Key == name) yield return pair.Value;
    }

    /// <summary>Percent-decoding with '+' as space; invalid escapes are kept literally.</summary>
    private static string Decode(ReadOnlySpan<byte> raw)
    {
        if (raw.IndexOfAny((byte)'%', (byte)'+') < 0) return Encoding.UTF8.GetString(raw);
        byte[] bytes = new byte[raw.Length];
        int n = 0;
        for (int i = 0; i < raw.Length; i++)
        {
            byte b = raw[i];
            if (b == (byte)'+')
            {
                bytes[n++] = (byte)' ';
            }
            else if (b == (byte)'%' && i + 2 < raw.Length &&
                     HexValue(raw[i + 1]) is int hi and >= 0 && HexValue(raw[i + 2]) is int lo and >= 0)
            {
                bytes[n++] = (byte)(hi * 16 + lo);
                i += 2;
            }
            else
            {
                bytes[n++] = b;
            }
        }
        return Encoding.UTF8.GetString(bytes, 0, n);
    }

    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };
}
