using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>One HTTP answer as it came off the wire.</summary>
public sealed class RawResponse
{
    public required int Status { get; init; }
    public required string StatusLine { get; init; }
    public required IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; }
    public byte[] Body { get; set; } = [];

    public string? Header(string name)
    {
        foreach (var (k, v) in Headers)
            if (string.Equals(k, name, StringComparison.OrdinalIgnoreCase)) return v;
        return null;
    }

    public string BodyText => Encoding.UTF8.GetString(Body);

    public JsonElement Json()
    {
        using var doc = JsonDocument.Parse(Body);
        return doc.RootElement.Clone();
    }

    public override string ToString() => StatusLine + " " + BodyText;
}

/// <summary>
/// A raw loopback TCP connection to the daemon: send exact bytes, read answers exactly as sent
/// (Content-Length, chunked or close-delimited bodies), with bounded waits everywhere.
/// </summary>
public sealed class RawConnection : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;
    private byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private RawConnection(Socket socket) => _socket = socket;

    public Socket Socket => _socket;

    public static async Task<RawConnection> OpenAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        return new RawConnection(socket);
    }

    public static Task<RawConnection> OpenAsync(DaemonProcess daemon) => OpenAsync(daemon.Port);

    public Task SendAsync(string ascii) => SendAsync(Encoding.UTF8.GetBytes(ascii));

    public async Task SendAsync(byte[] bytes)
    {
        int sent = 0;
        while (sent < bytes.Length)
            sent += await _socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
    }

    /// <summary>Bytes received but not consumed yet.</summary>
    public ReadOnlySpan<byte> Buffered => _buffer.AsSpan(_start, _end - _start);

    /// <summary>Receives more bytes into the buffer; 0 at end of stream.</summary>
    public async Task<int> FillAsync(CancellationToken ct)
    {
        if (_start > 0 && _start == _end) _start = _end = 0;
        if (_end == _buffer.Length)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            else
            {
                Array.Resize(ref _buffer, _buffer.Length * 2);
            }
        }
        int n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct);
        _end += n;
        return n;
    }

    private byte[] Take(int count)
    {
        byte[] taken = _buffer.AsSpan(_start, count).ToArray();
        _start += count;
        return taken;
    }

    private async Task<int> FillOrThrowAsync(CancellationToken ct, string what)
    {
        try
        {
            int n = await FillAsync(ct);
            if (n == 0) throw new EndOfStreamException($"the daemon closed the connection while {what}; had: {Preview()}");
            return n;
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"timed out while {what}; had: {Preview()}");
        }
    }

    private string Preview()
    {
        string s = Encoding.UTF8.GetString(Buffered);
        return s.Length > 400 ? s[..400] + "…" : s;
    }

    /// <summary>Reads a status line and header fields (up to the blank line).</summary>
    public async Task<RawResponse> ReadHeadAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        return await ReadHeadAsync(cts.Token);
    }

    private async Task<RawResponse> ReadHeadAsync(CancellationToken ct)
    {
        int headEnd;
        while ((headEnd = Buffered.IndexOf("\r\n\r\n"u8)) < 0)
            await FillOrThrowAsync(ct, "reading an answer's head");
        string head = Encoding.ASCII.GetString(Take(headEnd + 4));
        string[] lines = head[..^4].Split("\r\n");
        string[] statusParts = lines[0].Split(' ', 3);
        if (statusParts.Length < 2 || !statusParts[0].StartsWith("HTTP/1.", StringComparison.Ordinal))
            throw new InvalidDataException("not an HTTP status line: " + lines[0]);
        var headers = new List<KeyValuePair<string, string>>();
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':');
            if (colon <= 0) throw new InvalidDataException("bad header line: " + line);
            headers.Add(new(line[..colon], line[(colon + 1)..].Trim()));
        }
        return new RawResponse { Status = int.Parse(statusParts[1]), StatusLine = lines[0], Headers = headers };
    }

    /// <summary>Reads one whole answer (head and body) to a request with the given method.</summary>
    public async Task<RawResponse> ReadResponseAsync(TimeSpan? timeout = null, bool head = false)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        RawResponse response = await ReadHeadAsync(cts.Token);
        if (head || response.Status is (>= 100 and < 200) or 204 or 304) return response;
        if (response.Header("Transfer-Encoding") is { } te && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            response.Body = await ReadChunkedAsync(cts.Token);
        }
        else if (response.Header("Content-Length") is { } cl)
        {
            int length = int.Parse(cl);
            while (Buffered.Length < length) await FillOrThrowAsync(cts.Token, "reading a body");
            response.Body = Take(length);
        }
        else
        {
            response.Body = await ReadToEndAsync(cts.Token);
        }
        return response;
    }

    private async Task<byte[]> ReadChunkedAsync(CancellationToken ct)
    {
        var body = new MemoryStream();
        while (true)
        {
            int lineEnd;
            while ((lineEnd = Buffered.IndexOf("\r\n"u8)) < 0) await FillOrThrowAsync(ct, "reading a chunk size");
            string sizeLine = Encoding.ASCII.GetString(Take(lineEnd + 2))[..^2];
            int semi = sizeLine.IndexOf(';');
            int size = Convert.ToInt32(semi < 0 ? sizeLine : sizeLine[..semi], 16);
            if (size == 0)
            {
                while (Buffered.IndexOf("\r\n"u8) != 0 && Buffered.IndexOf("\r\n\r\n"u8) < 0)
                    await FillOrThrowAsync(ct, "reading the trailer");
                int trailerEnd = Buffered.IndexOf("\r\n"u8) == 0 ? 2 : Buffered.IndexOf("\r\n\r\n"u8) + 4;
                Take(trailerEnd);
                return body.ToArray();
            }
            while (Buffered.Length < size + 2) await FillOrThrowAsync(ct, "reading a chunk");
            body.Write(Take(size + 2), 0, size);
        }
    }

    private async Task<byte[]> ReadToEndAsync(CancellationToken ct)
    {
        try
        {
            while (await FillAsync(ct) > 0)
            {
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("timed out waiting for the end of a close-delimited body; had: " + Preview());
        }
        return Take(_end - _start);
    }

    /// <summary>
    /// Reads a close-delimited streaming body until <paramref name="done"/> holds for everything received
    /// after the head (which the caller has read). Returns those bytes (they stay buffered).
    /// </summary>
    public async Task<byte[]> ReadUntilAsync(Func<byte[], bool> done, TimeSpan? timeout = null, string what = "reading the stream")
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        while (true)
        {
            byte[] all = Buffered.ToArray();
            if (done(all)) return all;
            await FillOrThrowAsync(cts.Token, what);
        }
    }

    public Task<byte[]> ReadUntilContainsAsync(string text, TimeSpan? timeout = null)
    {
        byte[] needle = Encoding.UTF8.GetBytes(text);
        return ReadUntilAsync(b => b.AsSpan().IndexOf(needle) >= 0, timeout, "waiting for " + text.ReplaceLineEndings("\\n"));
    }

    /// <summary>Drops <paramref name="count"/> buffered bytes.</summary>
    public void Consume(int count) => _start += count;

    /// <summary>
    /// Reads until the peer ends the stream. Returns everything received and whether the end was clean
    /// (FIN) rather than a reset. Throws TimeoutException when it does not end in time.
    /// </summary>
    public async Task<(byte[] Bytes, bool Clean)> ReadToCloseAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (await FillAsync(cts.Token) > 0)
            {
            }
            return (Buffered.ToArray(), true);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            return (Buffered.ToArray(), false);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("the connection did not end in time; had: " + Preview());
        }
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return default;
    }
}
