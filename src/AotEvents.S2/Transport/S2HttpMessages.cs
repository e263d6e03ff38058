using System.Text;

namespace AotEvents.S2.Transport;

/// <summary>
/// Sends one HTTP request and returns the response with its body still to be read. Implemented by
/// <see cref="S2HttpConnectionPool"/>; tests substitute canned answers.
/// </summary>
internal interface IS2HttpTransport : IDisposable
{
    /// <summary>
    /// Sends <paramref name="request"/> and reads the response head. Failures: <see cref="IOException"/> (connection
    /// lost, <see cref="S2HttpProtocolException"/> for an answer that is not HTTP/1.1), SocketException (connect),
    /// AuthenticationException (TLS), <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires.
    /// </summary>
    Task<S2HttpResponse> SendAsync(S2HttpRequest request, CancellationToken cancellationToken);
}

/// <summary>One request: method, absolute URL (its path and query are sent verbatim), headers, optional body.</summary>
internal sealed class S2HttpRequest
{
    public S2HttpRequest(string method, string url, int targetStart)
    {
        Method = method;
        Url = url;
        Target = url[targetStart..];
    }

    /// <summary><c>GET</c> or <c>POST</c>.</summary>
    public string Method { get; }

    /// <summary>The absolute URL, e.g. <c>https://b.b.s2.dev/v1/streams/s/records?seq_num=0</c>.</summary>
    public string Url { get; }

    /// <summary>The request target sent on the request line: path and query.</summary>
    public string Target { get; }

    /// <summary>Request headers besides Host, Content-Length and Connection (which the connection writes).</summary>
    public List<KeyValuePair<string, string>> Headers { get; } = new(6);

    /// <summary>The body, or null for none.</summary>
    public ReadOnlyMemory<byte>? Content { get; set; }

    /// <summary>Whether the request may be repeated without changing the outcome (GET).</summary>
    public bool IsIdempotent => Method is "GET" or "HEAD";

    public void AddHeader(string name, string value) => Headers.Add(new(name, value));

    /// <summary>The first value of header <paramref name="name"/> (case-insensitive), or null.</summary>
    public string? GetHeader(string name) => S2HttpHeaders.Get(Headers, name);
}

/// <summary>
/// A response whose head has been read. <see cref="Body"/> streams the payload (Content-Length, chunked, or
/// up to the connection's close). Dispose it: a fully read body on a keep-alive connection hands the
/// connection back to the pool, anything else closes it.
/// </summary>
internal sealed class S2HttpResponse : IDisposable
{
    private S2HttpConnectionPool? _pool;
    private S2HttpConnection? _connection;

    public S2HttpResponse(int statusCode, string reasonPhrase, IReadOnlyList<KeyValuePair<string, string>> headers, Stream body)
    {
        StatusCode = statusCode;
        ReasonPhrase = reasonPhrase;
        Headers = headers;
        Body = body;
    }

    internal S2HttpResponse(int statusCode, string reasonPhrase, IReadOnlyList<KeyValuePair<string, string>> headers, S2HttpConnection connection, S2HttpConnectionPool pool)
        : this(statusCode, reasonPhrase, headers, new S2HttpBodyStream(connection))
    {
        _connection = connection;
        _pool = pool;
    }

    public int StatusCode { get; }

    public string ReasonPhrase { get; }

    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; }

    public Stream Body { get; }

    public bool IsSuccessStatusCode => StatusCode is >= 200 and <= 299;

    public void Dispose()
    {
        Body.Dispose();
        S2HttpConnection? connection = Interlocked.Exchange(ref _connection, null);
        if (connection is not null)
        {
            _pool!.Return(connection);
            _pool = null;
        }
    }
}

/// <summary>The answer was not HTTP/1.1 as the client understands it (garbage, oversized, malformed framing).</summary>
internal sealed class S2HttpProtocolException(string message) : IOException(message);

/// <summary>Header list helpers.</summary>
internal static class S2HttpHeaders
{
    public static string? Get(IReadOnlyList<KeyValuePair<string, string>> headers, string name)
    {
        for (int i = 0; i < headers.Count; i++)
        {
            if (string.Equals(headers[i].Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return headers[i].Value;
            }
        }

        return null;
    }

    /// <summary>Whether every char is printable ASCII or a tab (what may go into a header value as is).</summary>
    public static bool IsValidValue(string value)
    {
        foreach (char c in value)
        {
            if (c is not ((>= ' ' and <= '~') or '\t'))
            {
                return false;
            }
        }

        return true;
    }

    internal static string Latin1(ReadOnlySpan<byte> bytes) => bytes.IsEmpty ? string.Empty : Encoding.Latin1.GetString(bytes);
}
