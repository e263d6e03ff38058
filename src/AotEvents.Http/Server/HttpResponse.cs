using System.Diagnostics.CodeAnalysis;

namespace AotEvents.Http.Server;

/// <summary>
/// The answer to one request. Either <see cref="Write"/> (buffered: goes into the connection's pooled send buffer;
/// the connection sends when no more pipelined input is waiting, so many pipelined answers leave in one send) or
/// <see cref="StartStreamingAsync"/> (close-delimited body written piece by piece). Header fields added with
/// <see cref="AddHeader"/> before either are sent with it. Single-threaded: call from the handler only.
/// </summary>
public sealed class HttpResponse
{
    private const int InlineHeaderBytes = 256;

    private readonly HttpConnection? _connection;
    private byte[]? _inlineHeaders;     // owned, small, kept for the connection's life once used
    private byte[]? _pooledHeaders;     // rented when the inline array is too small; returned at reset
    private int _headersLength;
    private State _state;
    private bool _isHead;
    private bool _keepAlive;
    private bool _http10;
    private int _status;

    private enum State : byte
    {
        NotStarted,
        Written,
        Streaming,
    }

    internal HttpResponse(HttpConnection? connection)
    {
        _connection = connection;
    }

    /// <summary>True once <see cref="Write"/> or <see cref="StartStreamingAsync"/> has been called.</summary>
    public bool HasStarted => _state != State.NotStarted;

    /// <summary>Status given to <see cref="Write"/> or <see cref="StartStreamingAsync"/>; 0 before.</summary>
    public int StatusCode => _status;

    /// <summary>Whether the connection stays open after this answer (decided when the answer is written).</summary>
    public bool KeepAlive => _keepAlive;

    /// <summary>Makes the connection close after this answer ('Connection: close' is sent). Call before writing.</summary>
    public void CloseConnection()
    {
        EnsureNotStarted();
        _keepAlive = false;
    }

    /// <summary>The connection closes after this answer whatever was sent (handler failure after writing).</summary>
    internal void ForceClose() => _keepAlive = false;

    internal void Reset(bool isHead, bool keepAlive, bool http10)
    {
        _state = State.NotStarted;
        _status = 0;
        _isHead = isHead;
        _keepAlive = keepAlive;
        _http10 = http10;
        _headersLength = 0;
        ReleaseHeaders();
    }

    internal void ReleaseHeaders()
    {
        if (_pooledHeaders is not null && _connection is not null)
        {
            _connection.Pool.Return(_pooledHeaders);
        }
        _pooledHeaders = null;
    }

    /// <summary>
    /// Adds a header field to the answer. Call before <see cref="Write"/> / <see cref="StartStreamingAsync"/>.
    /// Don't add Content-Length, Transfer-Encoding or Connection: the server writes those.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not a token or the value holds CR, LF or other control characters.</exception>
    public void AddHeader(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        EnsureNotStarted();
        if (!HttpParser.IsToken(name))
        {
            throw new ArgumentException("Header name must be a non-empty token.", nameof(name));
        }
        if (!HttpParser.IsValidFieldValue(value))
        {
            throw new ArgumentException("Header value must not contain control characters.", nameof(value));
        }
        int needed = name.Length + value.Length + 4;
        Span<byte> destination = ReserveHeaderSpace(needed);
        name.CopyTo(destination);
        destination[name.Length] = (byte)':';
        destination[name.Length + 1] = (byte)' ';
        value.CopyTo(destination[(name.Length + 2)..]);
        destination[needed - 2] = (byte)'\r';
        destination[needed - 1] = (byte)'\n';
        _headersLength += needed;
    }

    private Span<byte> ReserveHeaderSpace(int needed)
    {
        byte[] current = _pooledHeaders ?? (_inlineHeaders ??= new byte[InlineHeaderBytes]);
        if (current.Length - _headersLength < needed)
        {
            if (_connection is null)
            {
                Array.Resize(ref _inlineHeaders, Math.Max(current.Length * 2, _headersLength + needed));
                current = _inlineHeaders;
            }
            else
            {
                byte[] bigger = _connection.Pool.Rent(Math.Max(current.Length * 2, _headersLength + needed));
                current.AsSpan(0, _headersLength).CopyTo(bigger);
                ReleaseHeaders();
                _pooledHeaders = current = bigger;
            }
        }
        return current.AsSpan(_headersLength, needed);
    }

    private ReadOnlySpan<byte> ExtraHeaders =>
        _headersLength == 0 ? default : (_pooledHeaders ?? _inlineHeaders).AsSpan(0, _headersLength);

    /// <summary>
    /// Writes a complete answer with a Content-Length (omitted, with the body, for 204 and 304; for HEAD the
    /// Content-Length of <paramref name="body"/> is sent without the body). <paramref name="contentType"/> may be empty.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="status"/> is not 200..999.</exception>
    /// <exception cref="InvalidOperationException">An answer was already written or started.</exception>
    public void Write(int status, ReadOnlySpan<byte> contentType, ReadOnlySpan<byte> body)
    {
        ValidateAnswer(status);
        bool noBody = status is 204 or 304;
        if (noBody && !body.IsEmpty)
        {
            throw new ArgumentException("A 204 or 304 answer has no body.", nameof(body));
        }
        ValidateHead(contentType);
        _status = status;
        _state = State.Written;
        if (_keepAlive && _connection.IsServerDraining)
        {
            _keepAlive = false;
        }
        bool sendBody = !noBody && !_isHead;
        ReadOnlySpan<byte> extra = ExtraHeaders;
        int maxLength = HttpStatus.MaxStatusLineLength
            + (contentType.IsEmpty ? 0 : 16 + contentType.Length)
            + 16 + 10 + 2
            + extra.Length
            + 24 + 2
            + (sendBody ? body.Length : 0);
        Span<byte> destination = _connection.GetOutputSpan(maxLength);
        int w = WriteStatusAndContentType(destination, status, contentType);
        if (!noBody)
        {
            w += Append(destination, w, HttpStatus.ContentLengthHeader);
            ((uint)body.Length).TryFormat(destination[w..], out int digits);
            w += digits;
            w += Append(destination, w, HttpStatus.Crlf);
        }
        w += Append(destination, w, extra);
        w += AppendConnection(destination, w);
        w += Append(destination, w, HttpStatus.Crlf);
        if (sendBody)
        {
            w += Append(destination, w, body);
        }
        _connection.AdvanceOutput(w);
        ReleaseHeaders();
    }

    /// <summary>Checks shared by <see cref="Write"/> and <see cref="StartStreamingAsync"/> before the head is built.</summary>
    private void ValidateAnswer(int status)
    {
        EnsureNotStarted();
        ArgumentOutOfRangeException.ThrowIfLessThan(status, 200);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(status, 999);
    }

    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(_connection))]
    private void ValidateHead(ReadOnlySpan<byte> contentType)
    {
        if (!contentType.IsEmpty && !HttpParser.IsValidFieldValue(contentType))
        {
            throw new ArgumentException("Content type must not contain control characters.", nameof(contentType));
        }
        if (_connection is null)
        {
            throw new InvalidOperationException("Not attached to a connection.");
        }
    }

    /// <summary>
    /// Starts a streaming (close-delimited) answer: sends the status line, <paramref name="contentType"/>, the added
    /// header fields and 'Connection: close' now (with any answers still buffered before it). The handler then owns
    /// the connection until it returns; the connection is closed afterwards. The request's spans and body are released
    /// here: read what you need from the request before calling this. If the client is already gone the stream comes
    /// back with <see cref="HttpStream.Aborted"/> cancelled.
    /// </summary>
    public ValueTask<HttpStream> StartStreamingAsync(int status, ReadOnlySpan<byte> contentType)
    {
        ValidateAnswer(status);
        ValidateHead(contentType);
        _status = status;
        _state = State.Streaming;
        _keepAlive = false;
        ReadOnlySpan<byte> extra = ExtraHeaders;
        int maxLength = HttpStatus.MaxStatusLineLength + (contentType.IsEmpty ? 0 : 16 + contentType.Length) + extra.Length + 24 + 2;
        Span<byte> destination = _connection.GetOutputSpan(maxLength);
        int w = WriteStatusAndContentType(destination, status, contentType);
        w += Append(destination, w, extra);
        w += Append(destination, w, HttpStatus.ConnectionClose);
        w += Append(destination, w, HttpStatus.Crlf);
        _connection.AdvanceOutput(w);
        ReleaseHeaders();
        return _connection.BeginStreamingAsync();
    }

    /// <summary>Writes the server's own error answer (used after a handler failure or a missing answer).</summary>
    internal void WriteServerError()
    {
        _status = 500;
        _state = State.Written;
        _keepAlive = false;
        ReleaseHeaders();
        _headersLength = 0;
        ReadOnlySpan<byte> bytes = HttpStatus.InternalServerError;
        bytes.CopyTo(_connection!.GetOutputSpan(bytes.Length));
        _connection.AdvanceOutput(bytes.Length);
    }

    private int AppendConnection(Span<byte> destination, int offset)
    {
        if (!_keepAlive)
        {
            return Append(destination, offset, HttpStatus.ConnectionClose);
        }
        return _http10 ? Append(destination, offset, HttpStatus.ConnectionKeepAlive) : 0;
    }

    /// <summary>The status line and, when there is one, the Content-Type header; returns the bytes written.</summary>
    private static int WriteStatusAndContentType(Span<byte> destination, int status, ReadOnlySpan<byte> contentType)
    {
        int w = HttpStatus.WriteStatusLine(status, destination);
        if (!contentType.IsEmpty)
        {
            w += Append(destination, w, HttpStatus.ContentTypeHeader);
            w += Append(destination, w, contentType);
            w += Append(destination, w, HttpStatus.Crlf);
        }
        return w;
    }

    private static int Append(Span<byte> destination, int offset, ReadOnlySpan<byte> source)
    {
        source.CopyTo(destination[offset..]);
        return source.Length;
    }

    private void EnsureNotStarted()
    {
        if (_state != State.NotStarted)
        {
            ThrowStarted();
        }
    }

    [DoesNotReturn]
    private static void ThrowStarted() => throw new InvalidOperationException("The answer has already been written or started.");
}
