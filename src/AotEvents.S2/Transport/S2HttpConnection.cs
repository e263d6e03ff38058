using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;

namespace AotEvents.S2.Transport;

/// <summary>The response head as parsed: status line and headers.</summary>
internal readonly record struct S2HttpResponseHead(int StatusCode, string ReasonPhrase, List<KeyValuePair<string, string>> Headers);

/// <summary>
/// One HTTP/1.1 connection (TCP, or TLS via <see cref="SslStream"/> for https): writes a request, reads the
/// response head and body (Content-Length, chunked, or until close). One exchange at a time, no pipelining.
/// Any failure leaves it unusable; the pool then closes it.
/// </summary>
internal sealed class S2HttpConnection : IDisposable
{
    /// <summary>Read buffer size; also the limit of a response head and of a chunk-size or trailer line.</summary>
    internal const int BufferSize = 16 * 1024;

    private const int MaxHeaders = 128;
    private const int MaxTrailers = 64;
    private const int WriteBufferSize = 4096; // the request head, and the body too when both fit
    private const int DirectReadThreshold = 2048; // larger body reads bypass the buffer

    private static readonly List<SslApplicationProtocol> Http11Only = [SslApplicationProtocol.Http11];

    private readonly Socket _socket;
    private readonly Stream _stream;
    private byte[] _buffer; // pooled, like the write buffer: a connection per failed attempt must not churn the heap
    private byte[]? _writeBuffer;
    private int _disposed;
    private int _start;
    private int _end;

    // State of the current exchange.
    private BodyMode _mode;
    private ChunkState _chunk;
    private long _remaining; // Content-Length mode: body bytes left; chunked: bytes left in the current chunk
    private long _bodyRead;
    private long _maxBody;
    private int _trailers;
    private bool _keepAlive;
    private bool _bodyDone;
    private bool _broken;

    private S2HttpConnection(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        CreatedAt = Environment.TickCount64;
    }

    private enum BodyMode : byte
    {
        None,
        Length,
        Chunked,
        UntilClose,
    }

    private enum ChunkState : byte
    {
        Size,
        Data,
        DataEnd,
        Trailers,
    }

    /// <summary>When the connection was established (<see cref="Environment.TickCount64"/>).</summary>
    public long CreatedAt { get; }

    /// <summary>When it was last handed back to the pool.</summary>
    public long IdleSince { get; set; }

    /// <summary>Whether any byte of an answer arrived during the current exchange.</summary>
    public bool ReceivedResponseBytes { get; private set; }

    /// <summary>The exchange is complete and the connection may carry another one.</summary>
    public bool CanReuse => _keepAlive && _bodyDone && !_broken && _start == _end;

    /// <summary>
    /// Connects (DNS, TCP, TLS with SNI = host, the system trust store and ALPN http/1.1) within
    /// <see cref="S2HttpPoolOptions.ConnectTimeout"/>. Its expiry is an <see cref="IOException"/>; the expiry of
    /// <paramref name="cancellationToken"/> an <see cref="OperationCanceledException"/>.
    /// </summary>
    public static async Task<S2HttpConnection> ConnectAsync(S2HttpOrigin origin, S2HttpPoolOptions options, CancellationToken cancellationToken)
    {
        using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (options.ConnectTimeout != Timeout.InfiniteTimeSpan)
        {
            connectTimeout.CancelAfter(options.ConnectTimeout);
        }

        Socket? socket = null;
        Stream? stream = null;
        try
        {
            socket = options.ConnectCallback is { } connect
                ? await connect(origin.Host, origin.Port, connectTimeout.Token).ConfigureAwait(false)
                : await ConnectSocketAsync(origin.Host, origin.Port, connectTimeout.Token).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (origin.UseTls)
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = tls;
                await tls.AuthenticateAsClientAsync(
                    new SslClientAuthenticationOptions { TargetHost = origin.Host, ApplicationProtocols = Http11Only },
                    connectTimeout.Token).ConfigureAwait(false);
            }

            return new S2HttpConnection(socket, stream);
        }
        catch (Exception e)
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                socket?.Dispose();
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (connectTimeout.IsCancellationRequested)
            {
                throw new IOException(
                    $"connecting to {origin.Host}:{origin.Port} timed out after {options.ConnectTimeout.TotalMilliseconds:0} ms",
                    new TimeoutException(e.Message, e));
            }

            throw;
        }
    }

    private static async ValueTask<Socket> ConnectSocketAsync(string host, int port, CancellationToken cancellationToken)
    {
        // Dual-mode socket: IPv4 and IPv6 addresses alike; a host name tries each resolved address in turn.
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            EndPoint endPoint = IPAddress.TryParse(host, out IPAddress? address) ? new IPEndPoint(address, port) : new DnsEndPoint(host, port);
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Whether an idle connection still looks usable: nothing buffered and the socket not readable (a readable
    /// idle socket means the peer closed it, or sent bytes nobody asked for).
    /// </summary>
    public bool IsIdleAlive()
    {
        if (_broken || _start != _end)
        {
            return false;
        }

        try
        {
            return !_socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Writes the request line, headers and body.</summary>
    public async ValueTask WriteRequestAsync(S2HttpRequest request, string hostHeader, bool close, CancellationToken cancellationToken)
    {
        _broken = true; // until the exchange completes
        _keepAlive = false;
        _bodyDone = false;
        ReceivedResponseBytes = false;

        ReadOnlyMemory<byte> body = request.Content ?? ReadOnlyMemory<byte>.Empty;
        string target = EscapeTarget(request.Target);
        int headLength = request.Method.Length + target.Length + hostHeader.Length + 96;
        foreach (KeyValuePair<string, string> header in request.Headers)
        {
            if (!S2HttpHeaders.IsValidValue(header.Value) || !IsToken(header.Key))
            {
                throw new ArgumentException($"invalid characters in request header '{header.Key}'", nameof(request));
            }

            headLength += header.Key.Length + header.Value.Length + 4;
        }

        if (_writeBuffer is null || _writeBuffer.Length < headLength)
        {
            if (_writeBuffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_writeBuffer);
            }

            _writeBuffer = ArrayPool<byte>.Shared.Rent(Math.Max(WriteBufferSize, headLength));
        }

        byte[] buffer = _writeBuffer;
        int n = 0;
        Append(buffer, ref n, request.Method);
        Append(buffer, ref n, " ");
        Append(buffer, ref n, target);
        Append(buffer, ref n, " HTTP/1.1\r\nHost: ");
        Append(buffer, ref n, hostHeader);
        Append(buffer, ref n, "\r\n");
        foreach (KeyValuePair<string, string> header in request.Headers)
        {
            Append(buffer, ref n, header.Key);
            Append(buffer, ref n, ": ");
            Append(buffer, ref n, header.Value);
            Append(buffer, ref n, "\r\n");
        }

        if (request.Content is not null)
        {
            Append(buffer, ref n, "Content-Length: ");
            Append(buffer, ref n, body.Length.ToString(CultureInfo.InvariantCulture));
            Append(buffer, ref n, "\r\n");
        }

        if (close)
        {
            Append(buffer, ref n, "Connection: close\r\n");
        }

        Append(buffer, ref n, "\r\n");
        bool inline = body.Length <= buffer.Length - n;
        if (inline)
        {
            body.Span.CopyTo(buffer.AsSpan(n));
            n += body.Length;
        }

        await _stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        if (!inline)
        {
            await _stream.WriteAsync(body, cancellationToken).ConfigureAwait(false);
        }

        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the response head (skipping 1xx interim answers) and sets up the body's framing. An answer that
    /// does not start like HTTP/1.x, or a head over <see cref="BufferSize"/>, is an <see cref="S2HttpProtocolException"/>.
    /// </summary>
    public async ValueTask<S2HttpResponseHead> ReadResponseHeadAsync(bool requestKeepAlive, long maxBodyBytes, CancellationToken cancellationToken)
    {
        while (true)
        {
            int headLength;
            while ((headLength = FindHeadEnd()) < 0)
            {
                CheckStatusLinePrefix();
                if (_end - _start >= _buffer.Length)
                {
                    throw new S2HttpProtocolException($"response head exceeds {BufferSize} bytes");
                }

                if (await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
                {
                    throw new IOException(_start == _end
                        ? "the connection was closed before any answer"
                        : "the connection was closed in the middle of the response head");
                }
            }

            S2HttpResponseHead head = ParseHead(_buffer.AsSpan(_start, headLength), requestKeepAlive, maxBodyBytes);
            _start += headLength;
            if (head.StatusCode is >= 100 and <= 199)
            {
                continue; // 100 Continue, 103 Early Hints: the real answer follows
            }

            return head;
        }
    }

    /// <summary>Reads body bytes; 0 at the end of the body.</summary>
    public async ValueTask<int> ReadBodyAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (_bodyDone || destination.IsEmpty)
        {
            return 0;
        }

        bool failed = true;
        try
        {
            int n = await ReadBodyCoreAsync(destination, cancellationToken).ConfigureAwait(false);
            failed = false;
            return n;
        }
        finally
        {
            if (failed)
            {
                _broken = true;
            }
        }
    }

    /// <summary>Closes the connection. Called only when no operation is pending (the buffers go back to the pool).</summary>
    public void Dispose()
    {
        _broken = true;
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stream.Dispose();
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
        _start = _end = 0;
        if (_writeBuffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_writeBuffer);
            _writeBuffer = null;
        }
    }

    private async ValueTask<int> ReadBodyCoreAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        switch (_mode)
        {
            case BodyMode.Length:
            {
                if (_bodyRead + _remaining > _maxBody)
                {
                    throw new S2HttpProtocolException($"response body of {_bodyRead + _remaining} bytes exceeds {_maxBody} bytes");
                }

                int n = await ReadRawAsync(destination[..(int)Math.Min(destination.Length, _remaining)], cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    throw new IOException($"the connection was closed {_remaining} bytes before the end of the body");
                }

                _remaining -= n;
                _bodyDone = _remaining == 0;
                return Count(n);
            }

            case BodyMode.UntilClose:
            {
                int n = await ReadRawAsync(destination, cancellationToken).ConfigureAwait(false);
                _bodyDone = n == 0;
                return Count(n);
            }

            case BodyMode.Chunked:
                while (true)
                {
                    switch (_chunk)
                    {
                        case ChunkState.Size:
                        {
                            (int start, int length) = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
                            _remaining = ParseChunkSize(_buffer.AsSpan(start, length));
                            _chunk = _remaining == 0 ? ChunkState.Trailers : ChunkState.Data;
                            if (_bodyRead + _remaining > _maxBody)
                            {
                                throw new S2HttpProtocolException($"response body exceeds {_maxBody} bytes");
                            }

                            break;
                        }

                        case ChunkState.Data:
                        {
                            int n = await ReadRawAsync(destination[..(int)Math.Min(destination.Length, _remaining)], cancellationToken).ConfigureAwait(false);
                            if (n == 0)
                            {
                                throw new IOException("the connection was closed in the middle of a chunk");
                            }

                            _remaining -= n;
                            if (_remaining == 0)
                            {
                                _chunk = ChunkState.DataEnd;
                            }

                            return Count(n);
                        }

                        case ChunkState.DataEnd:
                        {
                            (_, int length) = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
                            if (length != 0)
                            {
                                throw new S2HttpProtocolException("chunk data not followed by CRLF");
                            }

                            _chunk = ChunkState.Size;
                            break;
                        }

                        default: // trailers: skipped up to the blank line
                        {
                            (_, int length) = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
                            if (length == 0)
                            {
                                _bodyDone = true;
                                return 0;
                            }

                            if (++_trailers > MaxTrailers)
                            {
                                throw new S2HttpProtocolException("too many trailer lines");
                            }

                            break;
                        }
                    }
                }

            default:
                _bodyDone = true;
                return 0;
        }
    }

    private int Count(int n)
    {
        _bodyRead += n;
        if (_bodyRead > _maxBody)
        {
            throw new S2HttpProtocolException($"response body exceeds {_maxBody} bytes");
        }

        return n;
    }

    /// <summary>Buffered bytes first; a large read with nothing buffered goes straight to the stream.</summary>
    private async ValueTask<int> ReadRawAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        if (_start == _end)
        {
            if (destination.Length >= DirectReadThreshold)
            {
                int read = await _stream.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
                ReceivedResponseBytes |= read > 0;
                return read;
            }

            if (await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                return 0;
            }
        }

        int n = Math.Min(destination.Length, _end - _start);
        _buffer.AsSpan(_start, n).CopyTo(destination.Span);
        _start += n;
        return n;
    }

    /// <summary>A line (without CRLF / LF) as a position in the buffer, valid until the next fill.</summary>
    private async ValueTask<(int Start, int Length)> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            int newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                int start = _start;
                int length = newline > 0 && _buffer[start + newline - 1] == (byte)'\r' ? newline - 1 : newline;
                _start += newline + 1;
                return (start, length);
            }

            if (_end - _start >= _buffer.Length)
            {
                throw new S2HttpProtocolException($"chunked-body line exceeds {BufferSize} bytes");
            }

            if (await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                throw new IOException("the connection was closed in the middle of a chunked body");
            }
        }
    }

    private async ValueTask<int> FillAsync(CancellationToken cancellationToken)
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }
        else if (_start > 0 && _buffer.Length - _end < _buffer.Length / 4)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        int read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        _end += read;
        ReceivedResponseBytes |= read > 0;
        return read;
    }

    /// <summary>Length of the head including its blank line, or -1 when not complete yet.</summary>
    private int FindHeadEnd()
    {
        ReadOnlySpan<byte> data = _buffer.AsSpan(_start, _end - _start);
        int from = 0;
        while (true)
        {
            int newline = data[from..].IndexOf((byte)'\n');
            if (newline < 0)
            {
                return -1;
            }

            int at = from + newline + 1; // first byte of the next line
            if (at < data.Length && data[at] == (byte)'\n')
            {
                return at + 1;
            }

            if (at + 1 < data.Length && data[at] == (byte)'\r' && data[at + 1] == (byte)'\n')
            {
                return at + 2;
            }

            if (at + 1 >= data.Length)
            {
                return -1; // the next line has not fully started yet
            }

            from = at;
        }
    }

    private void CheckStatusLinePrefix()
    {
        ReadOnlySpan<byte> data = _buffer.AsSpan(_start, Math.Min(_end - _start, 5));
        if (!"HTTP/"u8.StartsWith(data))
        {
            throw new S2HttpProtocolException("the answer is not HTTP: " + Printable(_buffer.AsSpan(_start, Math.Min(_end - _start, 32))));
        }
    }

    private S2HttpResponseHead ParseHead(ReadOnlySpan<byte> head, bool requestKeepAlive, long maxBodyBytes)
    {
        int newline = head.IndexOf((byte)'\n');
        ReadOnlySpan<byte> line = TrimCr(head[..newline]);
        head = head[(newline + 1)..];

        // HTTP/1.x SP 3DIGIT [SP reason]
        if (line.Length < 12 || !line.StartsWith("HTTP/1."u8) || line[7] is not ((byte)'0' or (byte)'1') || line[8] != (byte)' '
            || !IsDigit(line[9]) || !IsDigit(line[10]) || !IsDigit(line[11]) || (line.Length > 12 && line[12] != (byte)' '))
        {
            throw new S2HttpProtocolException("malformed status line: " + Printable(line));
        }

        int status = ((line[9] - '0') * 100) + ((line[10] - '0') * 10) + (line[11] - '0');
        if (status < 100 || status == 101)
        {
            throw new S2HttpProtocolException("unexpected status " + status.ToString(CultureInfo.InvariantCulture));
        }

        bool keepAlive = requestKeepAlive && line[7] == (byte)'1'; // HTTP/1.0 answers are not kept alive
        string reason = line.Length > 13 ? S2HttpHeaders.Latin1(line[13..]) : string.Empty;

        var headers = new List<KeyValuePair<string, string>>(8);
        long contentLength = -1;
        bool chunked = false;
        while (true)
        {
            newline = head.IndexOf((byte)'\n');
            line = TrimCr(head[..newline]);
            head = head[(newline + 1)..];
            if (line.IsEmpty)
            {
                break;
            }

            if (line[0] is (byte)' ' or (byte)'\t')
            {
                throw new S2HttpProtocolException("folded header line");
            }

            int colon = line.IndexOf((byte)':');
            if (colon <= 0 || !IsToken(line[..colon]))
            {
                throw new S2HttpProtocolException("malformed header line: " + Printable(line));
            }

            if (headers.Count == MaxHeaders)
            {
                throw new S2HttpProtocolException($"more than {MaxHeaders} response headers");
            }

            ReadOnlySpan<byte> name = line[..colon];
            ReadOnlySpan<byte> value = line[(colon + 1)..].Trim(" \t"u8);
            headers.Add(new(S2HttpHeaders.Latin1(name), S2HttpHeaders.Latin1(value)));
            if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                long length = ParseContentLength(value);
                if (contentLength >= 0 && contentLength != length)
                {
                    throw new S2HttpProtocolException("conflicting Content-Length headers");
                }

                contentLength = length;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                if (chunked || !Ascii.EqualsIgnoreCase(value, "chunked"u8))
                {
                    throw new S2HttpProtocolException("unsupported Transfer-Encoding: " + Printable(value));
                }

                chunked = true;
            }
            else if (Ascii.EqualsIgnoreCase(name, "Connection"u8) && HasToken(value, "close"u8))
            {
                keepAlive = false;
            }
        }

        _maxBody = maxBodyBytes;
        _bodyRead = 0;
        _trailers = 0;
        _chunk = ChunkState.Size;
        _remaining = 0;
        if (status is (>= 100 and <= 199) or 204 or 304)
        {
            _mode = BodyMode.None;
        }
        else if (chunked)
        {
            _mode = BodyMode.Chunked;
            keepAlive &= contentLength < 0; // both framings: answer is suspect, do not reuse (RFC 9112 §6.3)
        }
        else if (contentLength >= 0)
        {
            _mode = BodyMode.Length;
            _remaining = contentLength; // over the limit: refused when the body is read, the status still counts
        }
        else
        {
            _mode = BodyMode.UntilClose;
            keepAlive = false;
        }

        _bodyDone = _mode == BodyMode.None || (_mode == BodyMode.Length && _remaining == 0);
        _keepAlive = keepAlive;
        _broken = false;
        return new S2HttpResponseHead(status, reason, headers);
    }

    private static long ParseContentLength(ReadOnlySpan<byte> value)
    {
        // "n" or a list of identical values ("n, n"), as RFC 9110 §8.6 allows.
        long result = -1;
        foreach (Range part in value.Split((byte)','))
        {
            ReadOnlySpan<byte> digits = value[part].Trim(" \t"u8);
            if (digits.IsEmpty || digits.Length > 18 || digits.ContainsAnyExceptInRange((byte)'0', (byte)'9'))
            {
                throw new S2HttpProtocolException("invalid Content-Length: " + Printable(value));
            }

            long parsed = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
            if (result >= 0 && parsed != result)
            {
                throw new S2HttpProtocolException("invalid Content-Length: " + Printable(value));
            }

            result = parsed;
        }

        return result;
    }

    private static long ParseChunkSize(ReadOnlySpan<byte> line)
    {
        int semicolon = line.IndexOf((byte)';'); // chunk extensions are ignored
        ReadOnlySpan<byte> hex = (semicolon >= 0 ? line[..semicolon] : line).TrimEnd(" \t"u8);
        if (hex.IsEmpty || hex.Length > 15)
        {
            throw new S2HttpProtocolException("invalid chunk size: " + Printable(line));
        }

        long size = 0;
        foreach (byte b in hex)
        {
            int digit = b switch
            {
                >= (byte)'0' and <= (byte)'9' => b - '0',
                >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
                _ => throw new S2HttpProtocolException("invalid chunk size: " + Printable(line)),
            };
            size = (size << 4) | (uint)digit;
        }

        return size;
    }

    private static bool HasToken(ReadOnlySpan<byte> list, ReadOnlySpan<byte> token)
    {
        foreach (Range part in list.Split((byte)','))
        {
            if (Ascii.EqualsIgnoreCase(list[part].Trim(" \t"u8), token))
            {
                return true;
            }
        }

        return false;
    }

    private static ReadOnlySpan<byte> TrimCr(ReadOnlySpan<byte> line) => line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;

    private static bool IsDigit(byte b) => b is >= (byte)'0' and <= (byte)'9';

    private static bool IsTokenChar(int c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9')
        or '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '.' or '^' or '_' or '`' or '|' or '~';

    private static bool IsToken(ReadOnlySpan<byte> name)
    {
        foreach (byte b in name)
        {
            if (!IsTokenChar(b))
            {
                return false;
            }
        }

        return !name.IsEmpty;
    }

    private static bool IsToken(string name)
    {
        foreach (char c in name)
        {
            if (!IsTokenChar(c))
            {
                return false;
            }
        }

        return name.Length > 0;
    }

    /// <summary>Up to 64 bytes of an answer for an error message, non-printables as '?'.</summary>
    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        bytes = bytes[..Math.Min(bytes.Length, 64)];
        var text = new StringBuilder(bytes.Length + 2).Append('"');
        foreach (byte b in bytes)
        {
            text.Append(b is >= 0x20 and < 0x7F ? (char)b : '?');
        }

        return text.Append('"').ToString();
    }

    /// <summary>The target as sent: printable ASCII stays, anything else is percent-encoded UTF-8.</summary>
    private static string EscapeTarget(string target)
    {
        foreach (char c in target)
        {
            if (c is <= ' ' or > '~')
            {
                return EscapeNonAscii(target);
            }
        }

        return target;
    }

    private static string EscapeNonAscii(string target)
    {
        var escaped = new StringBuilder(target.Length + 16);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (Rune rune in target.EnumerateRunes())
        {
            if (rune.Value is > ' ' and <= '~')
            {
                escaped.Append((char)rune.Value);
                continue;
            }

            int length = rune.EncodeToUtf8(utf8);
            for (int i = 0; i < length; i++)
            {
                escaped.Append('%').Append(utf8[i].ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return escaped.ToString();
    }

    /// <summary>Appends ASCII text (callers validated it) to <paramref name="buffer"/>.</summary>
    private static void Append(byte[] buffer, ref int position, string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            buffer[position + i] = (byte)text[i];
        }

        position += text.Length;
    }
}
