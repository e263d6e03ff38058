using CommunityToolkit.HighPerformance.Buffers;
using System.Buffers;
using System.Globalization;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Text.Json;
using AotEvents.S2.Json;
using AotEvents.S2.Transport;

namespace AotEvents.S2;

/// <summary>
/// Client of the S2 REST API (openapi.json) for one basin: append, read, check tail, create stream.
/// Bodies travel as JSON with <c>s2-format: raw</c>, so a record body is the UTF-8 text of an envelope.
/// Thread-safe; one instance is meant to live as long as the daemon.
/// </summary>
/// <remarks>
/// Every failure surfaces as <see cref="S2Exception"/> (caller cancellation excepted, which stays an
/// <see cref="OperationCanceledException"/>). The client never retries by itself: the shipper owns
/// the retry policy (backoff, <see cref="S2Exception.RetryAfter"/>, match_seq_num reconciliation).
/// </remarks>
public sealed class S2Client : IDisposable
{
    private const string JsonMediaType = "application/json";
    private const int MaxErrorBodyBytes = 64 * 1024;

    private static readonly string[] HttpDateFormats = ["r", "dddd, dd'-'MMM'-'yy HH':'mm':'ss 'GMT'", "ddd MMM d HH':'mm':'ss yyyy"];

    private readonly IS2HttpTransport _transport;
    private readonly string _authorization;
    private readonly TimeSpan _timeout;

    /// <summary>Creates a client with its own keep-alive connection pool (HTTP/1.1, TLS for https).</summary>
    public S2Client(S2Options options)
        : this(options, static (endpoint, o) => new S2HttpConnectionPool(
            S2HttpOrigin.FromUrl(endpoint.BaseUrl),
            new S2HttpPoolOptions { ConnectTimeout = o.ConnectTimeout }))
    {
    }

    /// <summary>Creates a client over another transport (tests: canned answers, connection policy).</summary>
    internal S2Client(S2Options options, Func<S2Endpoint, S2Options, IS2HttpTransport> transport)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(transport);
        if (string.IsNullOrEmpty(options.AccessToken) || !S2HttpHeaders.IsValidValue(options.AccessToken))
        {
            throw new ArgumentException("S2 access token must be non-empty printable ASCII", nameof(options));
        }

        if (options.RequestTimeout <= TimeSpan.Zero && options.RequestTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "RequestTimeout must be positive");
        }

        if (options.ConnectTimeout <= TimeSpan.Zero && options.ConnectTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "ConnectTimeout must be positive");
        }

        Endpoint = S2Endpoint.Resolve(options);
        if (Endpoint.BasinHeader is { } basin && !S2HttpHeaders.IsValidValue(basin))
        {
            throw new ArgumentException("S2 basin must be printable ASCII", nameof(options));
        }

        Basin = options.Basin.Trim();
        _timeout = options.RequestTimeout;
        _authorization = "Bearer " + options.AccessToken;
        _transport = transport(Endpoint, options);
    }

    /// <summary>The basin this client addresses.</summary>
    public string Basin { get; }

    /// <summary>Resolved base URL and <c>s2-basin</c> header rule.</summary>
    public S2Endpoint Endpoint { get; }

    /// <summary>
    /// Appends <paramref name="bodies"/> (1..1000 records, ≤ 1 MiB metered) atomically, each as one record
    /// with no headers. With <paramref name="matchSeqNum"/> the append lands only if the stream's tail
    /// equals it; otherwise 412 → <see cref="S2Exception.IsSeqNumMismatch"/> with the tail in
    /// <see cref="S2Exception.ExpectedSeqNum"/>.
    /// </summary>
    /// <param name="stream">Stream name.</param>
    /// <param name="bodies">Record bodies: valid UTF-8 text (envelope JSON).</param>
    /// <param name="matchSeqNum">Required sequence number of the first record, or null.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public async Task<S2AppendAck> AppendAsync(
        string stream,
        IReadOnlyList<ReadOnlyMemory<byte>> bodies,
        long? matchSeqNum,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(stream);
        ArgumentNullException.ThrowIfNull(bodies);
        if (bodies.Count is 0 or > S2Limits.MaxAppendRecords)
        {
            throw new ArgumentOutOfRangeException(nameof(bodies), bodies.Count, "an append carries 1 to 1000 records");
        }

        long estimate = 64;
        for (int i = 0; i < bodies.Count; i++)
        {
            estimate += bodies[i].Length + 16;
        }

        using var payload = new ArrayPoolBufferWriter<byte>((int)Math.Min(estimate + (estimate / 8), 4 * 1024 * 1024));
        S2Json.WriteAppendInput(payload, bodies, matchSeqNum);

        S2HttpRequest request = NewRequest("POST", Endpoint.StreamUrl(stream, "/records"), payload.WrittenMemory);
        S2AppendAck ack = await SendAsync(request, "append", stream, S2Json.ReadAppendAck, cancellationToken).ConfigureAwait(false);
        if (ack.Count != bodies.Count || (matchSeqNum is { } m && ack.Start.SeqNum != m))
        {
            throw new S2Exception(
                $"S2 append on stream '{stream}': ack [{ack.Start.SeqNum}, {ack.End.SeqNum}) does not match {bodies.Count} records at {matchSeqNum?.ToString(CultureInfo.InvariantCulture) ?? "any"}",
                S2FailureKind.InvalidResponse,
                200);
        }

        return ack;
    }

    /// <summary>
    /// Reads records (one unary read: at most 1000 records / 1 MiB, fewer with <paramref name="count"/>,
    /// <paramref name="bytes"/>, <paramref name="until"/>). Starting beyond the tail — or at the tail, since a
    /// unary read does not wait — is a 416 (<see cref="S2Exception.IsRangeNotSatisfiable"/>, tail in
    /// <see cref="S2Exception.Tail"/>) unless <paramref name="clamp"/> moves the start to the tail.
    /// </summary>
    /// <param name="stream">Stream name.</param>
    /// <param name="start">Sequence number, timestamp, or offset from the tail.</param>
    /// <param name="count">Record limit.</param>
    /// <param name="bytes">Metered bytes limit.</param>
    /// <param name="until">Exclusive timestamp to stop before.</param>
    /// <param name="clamp">Start at the tail when the start lies beyond it.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public async Task<S2ReadBatch> ReadAsync(
        string stream,
        S2ReadStart start,
        int? count = null,
        int? bytes = null,
        long? until = null,
        bool clamp = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(stream);
        ArgumentOutOfRangeException.ThrowIfNegative(start.Value, nameof(start));
        string url = BuildReadUrl(Endpoint, stream, start, count, bytes, until, clamp);
        S2HttpRequest request = NewRequest("GET", url);
        S2ReadBatch batch = await SendAsync(request, "read", stream, S2Json.ReadReadBatch, cancellationToken).ConfigureAwait(false);
        return batch.Records is null ? batch with { Records = [] } : batch;
    }

    /// <summary>The stream's tail: the next sequence number and the last record's timestamp.</summary>
    public async Task<S2StreamPosition> CheckTailAsync(string stream, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(stream);
        S2HttpRequest request = NewRequest("GET", Endpoint.StreamUrl(stream, "/records/tail"), format: false);
        S2Json.Answer tail = await SendAsync(request, "check tail", stream, S2Json.ReadTail, cancellationToken).ConfigureAwait(false);
        return tail.Tail ?? throw new S2Exception($"S2 check tail of stream '{stream}': answer has no tail", S2FailureKind.InvalidResponse, 200);
    }

    /// <summary>
    /// Creates the stream with the basin's default configuration. Returns true when this call created it,
    /// false when it already existed (409 <c>resource_already_exists</c> is success).
    /// </summary>
    public async Task<bool> CreateStreamAsync(string stream, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(stream);
        using var payload = new ArrayPoolBufferWriter<byte>(64 + (stream.Length * 3));
        S2Json.WriteCreateStream(payload, stream);

        S2HttpRequest request = NewRequest("POST", Endpoint.StreamsUrl, payload.WrittenMemory, format: false);
        try
        {
            await SendAsync<object>(request, "create stream", stream, null, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (S2Exception e) when (e.StatusCode == 409 && e.Code is null or "resource_already_exists")
        {
            return false;
        }
    }

    /// <inheritdoc />
    public void Dispose() => _transport.Dispose();

    /// <summary>The read URL with its query (exposed for tests of the composition).</summary>
    internal static string BuildReadUrl(S2Endpoint endpoint, string stream, S2ReadStart start, int? count, int? bytes, long? until, bool clamp)
    {
        var url = new StringBuilder(endpoint.StreamUrl(stream, "/records"), 160);
        CultureInfo inv = CultureInfo.InvariantCulture;
        url.Append('?').Append(start.QueryName).Append('=').Append(start.Value.ToString(inv));
        if (count is { } c)
        {
            url.Append("&count=").Append(c.ToString(inv));
        }

        if (bytes is { } b)
        {
            url.Append("&bytes=").Append(b.ToString(inv));
        }

        if (until is { } u)
        {
            url.Append("&until=").Append(u.ToString(inv));
        }

        if (clamp)
        {
            url.Append("&clamp=true");
        }

        return url.ToString();
    }

    /// <summary>
    /// Server-advised retry delay: <c>retry-after-ms</c> (milliseconds, S2), else the standard
    /// <c>Retry-After</c> (seconds or HTTP date). Null when absent or unparsable.
    /// </summary>
    internal static TimeSpan? ParseRetryAfter(IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        foreach (KeyValuePair<string, string> header in headers)
        {
            if (string.Equals(header.Key, "retry-after-ms", StringComparison.OrdinalIgnoreCase)
                && double.TryParse(header.Value.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double ms)
                && ms >= 0 && ms < TimeSpan.MaxValue.TotalMilliseconds)
            {
                return TimeSpan.FromMilliseconds(ms);
            }
        }

        string? retryAfter = S2HttpHeaders.Get(headers, "Retry-After")?.Trim();
        if (string.IsNullOrEmpty(retryAfter))
        {
            return null;
        }

        // delta-seconds (1*DIGIT) or an HTTP-date (RFC 9110 §10.2.3; IMF-fixdate and the two obsolete forms).
        if (retryAfter.AsSpan().IndexOfAnyExceptInRange('0', '9') < 0)
        {
            return int.TryParse(retryAfter, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds)
                ? TimeSpan.FromSeconds(seconds)
                : null;
        }

        if (DateTimeOffset.TryParseExact(retryAfter, HttpDateFormats, CultureInfo.InvariantCulture,
                DateTimeStyles.AllowWhiteSpaces | DateTimeStyles.AssumeUniversal, out DateTimeOffset date))
        {
            TimeSpan wait = date - DateTimeOffset.UtcNow;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }

        return null;
    }

    private S2HttpRequest NewRequest(string method, string url, ReadOnlyMemory<byte>? content = null, bool format = true)
    {
        var request = new S2HttpRequest(method, url, Endpoint.TargetStart) { Content = content };
        request.AddHeader("Authorization", _authorization);
        request.AddHeader("Accept", JsonMediaType);
        if (Endpoint.BasinHeader is { } basin)
        {
            request.AddHeader("s2-basin", basin);
        }

        if (format)
        {
            request.AddHeader("s2-format", "raw");
        }

        if (content is not null)
        {
            request.AddHeader("Content-Type", JsonMediaType);
        }

        return request;
    }

    /// <summary>Sends, maps failures to <see cref="S2Exception"/>, and parses a success body (unless <paramref name="parse"/> is null).</summary>
    private async Task<T> SendAsync<T>(S2HttpRequest request, string operation, string stream, S2Json.Parser<T>? parse, CancellationToken cancellationToken)
        where T : class
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (_timeout != Timeout.InfiniteTimeSpan)
        {
            deadline.CancelAfter(_timeout);
        }

        CancellationToken token = deadline.Token;
        int status = 0;
        try
        {
            using S2HttpResponse response = await _transport.SendAsync(request, token).ConfigureAwait(false);
            status = response.StatusCode;
            if (!response.IsSuccessStatusCode)
            {
                throw await ToExceptionAsync(response, operation, stream, token).ConfigureAwait(false);
            }

            if (parse is null)
            {
                await DrainAsync(response.Body, token).ConfigureAwait(false);
                return default!;
            }

            // The whole body (bounded by the transport), then one synchronous parse.
            using var body = new ArrayPoolBufferWriter<byte>(4096);
            while (true)
            {
                int read = await response.Body.ReadAsync(body.GetMemory(16 * 1024), token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                body.Advance(read);
            }

            T? value;
            try
            {
                value = parse(body.WrittenSpan);
            }
            catch (JsonException e)
            {
                throw new S2Exception($"S2 {operation} on stream '{stream}': unparsable answer: {e.Message}", S2FailureKind.InvalidResponse, status, null, e);
            }

            return value ?? throw new S2Exception($"S2 {operation} on stream '{stream}': empty answer", S2FailureKind.InvalidResponse, status);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw TimedOut(operation, stream, e);
        }
        catch (S2HttpProtocolException e)
        {
            throw new S2Exception($"S2 {operation} on stream '{stream}': invalid HTTP answer: {e.Message}", S2FailureKind.InvalidResponse, status, null, e);
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException)
        {
            // A socket aborted by the deadline may surface as an I/O error rather than a cancellation.
            cancellationToken.ThrowIfCancellationRequested();
            if (token.IsCancellationRequested)
            {
                throw TimedOut(operation, stream, e);
            }

            throw new S2Exception($"S2 {operation} on stream '{stream}' failed: {e.Message}", S2FailureKind.Network, 0, null, e);
        }
    }

    private S2Exception TimedOut(string operation, string stream, Exception e)
        => new($"S2 {operation} on stream '{stream}' timed out after {_timeout.TotalMilliseconds:0} ms", S2FailureKind.Timeout, 0, null, e);

    /// <summary>Reads a small body to its end so the connection can be reused; the answer already counts.</summary>
    private static async Task DrainAsync(Stream body, CancellationToken token)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            for (int total = 0; total < MaxErrorBodyBytes;)
            {
                int read = await body.ReadAsync(scratch, token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The connection is closed instead of reused.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static async Task<S2Exception> ToExceptionAsync(S2HttpResponse response, string operation, string stream, CancellationToken token)
    {
        int status = response.StatusCode;
        TimeSpan? retryAfter = ParseRetryAfter(response.Headers);
        byte[] body = await ReadLimitedAsync(response.Body, token).ConfigureAwait(false);

        string? code = null;
        string? message = null;
        long? expectedSeqNum = null;
        string? expectedToken = null;
        S2StreamPosition? tail = null;
        try
        {
            if (body.Length > 0 && body[0] == (byte)'{')
            {
                S2Json.Answer? answer = S2Json.ReadError(body, status);
                expectedSeqNum = answer?.SeqNumMismatch;
                expectedToken = answer?.FencingTokenMismatch;
                tail = answer?.Tail;
                code = expectedSeqNum.HasValue ? "seq_num_mismatch" : expectedToken is not null ? "fencing_token_mismatch" : answer?.Code;
                message = answer?.Message;
            }
        }
        catch (JsonException)
        {
            // Not the spec's shape (a proxy's page, a truncated body): fall back to the text.
        }

        if (message is null && body.Length > 0 && code is null && expectedSeqNum is null && tail is null)
        {
            message = Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, 512)).Trim();
        }

        var text = new StringBuilder(128).Append("S2 ").Append(operation).Append(" on stream '").Append(stream).Append("' failed: ")
            .Append(status.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(response.ReasonPhrase);
        if (code is not null)
        {
            text.Append(" [").Append(code).Append(']');
        }

        if (expectedSeqNum is { } expected)
        {
            text.Append(" expected seq_num ").Append(expected.ToString(CultureInfo.InvariantCulture));
        }

        if (tail is { } t)
        {
            text.Append(" tail seq_num ").Append(t.SeqNum.ToString(CultureInfo.InvariantCulture));
        }

        if (!string.IsNullOrEmpty(message))
        {
            text.Append(": ").Append(message);
        }

        return new S2Exception(text.ToString(), S2FailureKind.Response, status, code)
        {
            ExpectedSeqNum = expectedSeqNum,
            ExpectedFencingToken = expectedToken,
            Tail = tail,
            RetryAfter = retryAfter,
        };
    }

    private static async Task<byte[]> ReadLimitedAsync(Stream stream, CancellationToken token)
    {
        try
        {
            using var buffer = new ArrayPoolBufferWriter<byte>(1024);
            while (true)
            {
                Memory<byte> chunk = buffer.GetMemory(4096);
                int room = MaxErrorBodyBytes - buffer.WrittenMemory.Length;
                if (room <= 0)
                {
                    break;
                }

                int read = await stream.ReadAsync(chunk[..Math.Min(chunk.Length, room)], token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                buffer.Advance(read);
            }

            return buffer.WrittenMemory.ToArray();
        }
        catch (IOException)
        {
            // The status is what matters; a body cut short (or malformed) is just not parsed.
            return [];
        }
    }
}
