using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace AotEvents.Http.Server;

/// <summary>
/// One parsed request. Every span points into the connection's pooled receive buffer, so the object is valid only
/// while <see cref="IHttpHandler.HandleAsync"/> runs (and, for a streaming answer, only until
/// <see cref="HttpResponse.StartStreamingAsync"/>); after that every member but <see cref="Method"/> and
/// <see cref="KeepAlive"/> throws <see cref="InvalidOperationException"/>. Copy what must outlive the call.
/// </summary>
public sealed class HttpRequest
{
    // Parse results; offsets are relative to the request's first byte so that moving the request inside the
    // receive buffer (compaction, growth) keeps them valid.
    internal HttpMethod _method;
    internal int _methodLength;
    internal int _targetStart, _targetLength;
    internal int _pathStart, _pathLength;
    internal int _queryStart, _queryLength;
    internal bool _http11;
    internal long _contentLength;
    internal bool _chunked;
    internal bool _connectionClose;
    internal bool _connectionKeepAlive;
    internal bool _expectContinue;
    internal HeaderEntry[] _headers = new HeaderEntry[16];
    internal int _headerCount;

    // Where the search for the end of the head resumes when more bytes arrive (see HttpParser).
    internal int _scanPosition;
    internal int _scanLineStart;

    private byte[]? _buffer;
    private int _base;
    private ReadOnlyMemory<byte> _body;

    internal HttpRequest()
    {
        ResetParse();
    }

    internal void ResetParse()
    {
        _method = HttpMethod.Other;
        _methodLength = 0;
        _targetStart = _targetLength = _pathStart = _pathLength = _queryStart = _queryLength = 0;
        _http11 = false;
        _contentLength = -1;
        _chunked = _connectionClose = _connectionKeepAlive = _expectContinue = false;
        _headerCount = 0;
        _scanPosition = _scanLineStart = 0;
    }

    internal void Attach(byte[] buffer, int requestStart, ReadOnlyMemory<byte> body)
    {
        _buffer = buffer;
        _base = requestStart;
        _body = body;
    }

    internal void Detach()
    {
        _buffer = null;
        _body = default;
    }

    internal bool IsAttached => _buffer is not null;

    /// <summary>The method; <see cref="HttpMethod.Other"/> for anything not in the enum.</summary>
    public HttpMethod Method => _method;

    /// <summary>The method as sent (e.g. for <see cref="HttpMethod.Other"/>).</summary>
    public ReadOnlySpan<byte> RawMethod => Slice(0, _methodLength);

    /// <summary>The request target as sent (path and query).</summary>
    public ReadOnlySpan<byte> Target => Slice(_targetStart, _targetLength);

    /// <summary>Raw path without the query (no percent-decoding). "/" for an absolute-form target without a path; "*" for OPTIONS *.</summary>
    public ReadOnlySpan<byte> Path => _pathLength == 0 ? "/"u8 : Slice(_pathStart, _pathLength);

    /// <summary>Raw query without '?', empty if none.</summary>
    public ReadOnlySpan<byte> Query => Slice(_queryStart, _queryLength);

    /// <summary>True for HTTP/1.1, false for HTTP/1.0.</summary>
    public bool IsHttp11 => _http11;

    /// <summary>
    /// Whether the connection stays open after this request: HTTP/1.1 unless 'Connection: close'; HTTP/1.0 only with
    /// 'Connection: keep-alive'. (The server also closes while draining.)
    /// </summary>
    public bool KeepAlive => _http11 ? !_connectionClose : _connectionKeepAlive;

    /// <summary>The whole body (Content-Length or de-chunked); empty if none. Pooled memory: copy to keep.</summary>
    public ReadOnlyMemory<byte> Body
    {
        get
        {
            EnsureAttached();
            return _body;
        }
    }

    /// <summary>Number of header fields (in arrival order).</summary>
    public int HeaderCount => _headerCount;

    public ReadOnlySpan<byte> GetHeaderName(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)_headerCount, nameof(index));
        ref HeaderEntry h = ref _headers[index];
        return Slice(h.NameStart, h.NameLength);
    }

    public ReadOnlySpan<byte> GetHeaderValue(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)_headerCount, nameof(index));
        ref HeaderEntry h = ref _headers[index];
        return Slice(h.ValueStart, h.ValueLength);
    }

    /// <summary>Value of the first header field named <paramref name="name"/> (ASCII case-insensitive), without surrounding whitespace; empty if absent.</summary>
    public ReadOnlySpan<byte> GetHeader(ReadOnlySpan<byte> name)
    {
        EnsureAttached();
        ReadOnlySpan<byte> buffer = _buffer.AsSpan(_base);
        HeaderEntry[] headers = _headers;
        for (int i = 0; i < _headerCount; i++)
        {
            ref HeaderEntry h = ref headers[i];
            if (h.NameLength == name.Length && Ascii.EqualsIgnoreCase(buffer.Slice(h.NameStart, h.NameLength), name))
            {
                return buffer.Slice(h.ValueStart, h.ValueLength);
            }
        }
        return default;
    }

    /// <summary>
    /// First query parameter named <paramref name="name"/> (names compared after percent-decoding), value percent-decoded
    /// ('+' as space) and read as UTF-8. "a" and "a=" give an empty value; absent gives false and an empty value.
    /// Allocates the string; see <see cref="TryGetQueryRaw"/>.
    /// </summary>
    public bool TryGetQuery(ReadOnlySpan<byte> name, out string value)
    {
        if (!TryGetQueryRaw(name, out ReadOnlySpan<byte> raw))
        {
            value = string.Empty;
            return false;
        }
        if (raw.IsEmpty)
        {
            value = string.Empty;
            return true;
        }
        if (raw.IndexOfAny((byte)'%', (byte)'+') < 0)
        {
            value = Encoding.UTF8.GetString(raw);
            return true;
        }
        byte[]? rented = null;
        Span<byte> decoded = raw.Length <= 256 ? stackalloc byte[256] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(raw.Length));
        int length = PercentDecode(raw, decoded);
        value = Encoding.UTF8.GetString(decoded[..length]);
        if (rented is not null)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
        return true;
    }

    /// <summary>Like <see cref="TryGetQuery"/> but gives the raw (still percent-encoded) value; no allocation.</summary>
    public bool TryGetQueryRaw(ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        ReadOnlySpan<byte> query = Query;
        while (!query.IsEmpty)
        {
            int amp = query.IndexOf((byte)'&');
            ReadOnlySpan<byte> pair = amp < 0 ? query : query[..amp];
            query = amp < 0 ? default : query[(amp + 1)..];
            if (pair.IsEmpty)
            {
                continue;
            }
            int eq = pair.IndexOf((byte)'=');
            ReadOnlySpan<byte> key = eq < 0 ? pair : pair[..eq];
            if (KeyEquals(key, name))
            {
                value = eq < 0 ? default : pair[(eq + 1)..];
                return true;
            }
        }
        value = default;
        return false;
    }

    private static bool KeyEquals(ReadOnlySpan<byte> encodedKey, ReadOnlySpan<byte> name)
    {
        if (encodedKey.IndexOfAny((byte)'%', (byte)'+') < 0)
        {
            return encodedKey.SequenceEqual(name);
        }
        if (encodedKey.Length > 256)
        {
            return false;
        }
        Span<byte> decoded = stackalloc byte[256];
        int length = PercentDecode(encodedKey, decoded);
        return decoded[..length].SequenceEqual(name);
    }

    /// <summary>Decodes %XX and '+' (as space); a '%' not followed by two hex digits is kept as is.</summary>
    internal static int PercentDecode(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        int written = 0;
        for (int i = 0; i < source.Length; i++)
        {
            byte b = source[i];
            if (b == (byte)'+')
            {
                b = (byte)' ';
            }
            else if (b == (byte)'%' && i + 2 < source.Length && HexValue(source[i + 1]) >= 0 && HexValue(source[i + 2]) >= 0)
            {
                b = (byte)((HexValue(source[i + 1]) << 4) | HexValue(source[i + 2]));
                i += 2;
            }
            destination[written++] = b;
        }
        return written;
    }

    internal static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private ReadOnlySpan<byte> Slice(int start, int length)
    {
        EnsureAttached();
        return new ReadOnlySpan<byte>(_buffer, _base + start, length);
    }

    private void EnsureAttached()
    {
        if (_buffer is null)
        {
            ThrowNotAttached();
        }
    }

    [DoesNotReturn]
    private static void ThrowNotAttached() =>
        throw new InvalidOperationException("The HttpRequest is only valid during IHttpHandler.HandleAsync and before StartStreamingAsync.");
}

/// <summary>Where one header field's name and value sit, relative to the request's first byte.</summary>
internal struct HeaderEntry
{
    public int NameStart;
    public int NameLength;
    public int ValueStart;
    public int ValueLength;
}
