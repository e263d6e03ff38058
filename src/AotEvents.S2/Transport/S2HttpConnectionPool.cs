using System.Net.Sockets;

namespace AotEvents.S2.Transport;

/// <summary>Connection policy of <see cref="S2HttpConnectionPool"/>.</summary>
internal sealed class S2HttpPoolOptions
{
    /// <summary>Deadline for DNS, TCP connect and the TLS handshake.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Idle keep-alive connections kept for reuse; more concurrent requests open more connections.</summary>
    public int MaxIdleConnections { get; init; } = 4;

    /// <summary>An idle connection older than this is closed rather than reused (servers close idle ones too).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A connection is not reused after this age, so DNS changes of the endpoint are followed.</summary>
    public TimeSpan ConnectionLifetime { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>False: one connection per request, sent with <c>Connection: close</c>.</summary>
    public bool ReuseConnections { get; init; } = true;

    /// <summary>Upper bound of a response body; a larger one is an invalid response.</summary>
    public long MaxResponseBodyBytes { get; init; } = 32 * 1024 * 1024;

    /// <summary>Replaces DNS + TCP connect (tests point a host name at a local server); TLS still applies.</summary>
    public Func<string, int, CancellationToken, ValueTask<Socket>>? ConnectCallback { get; init; }
}

/// <summary>Scheme, host and port requests go to, and the Host header naming them.</summary>
internal sealed record S2HttpOrigin(bool UseTls, string Host, int Port, string HostHeader)
{
    /// <summary>The origin of an absolute http(s) URL.</summary>
    public static S2HttpOrigin FromUrl(string url)
    {
        var uri = new Uri(url, UriKind.Absolute);
        bool tls = uri.Scheme == Uri.UriSchemeHttps;
        if (!tls && uri.Scheme != Uri.UriSchemeHttp)
        {
            throw new ArgumentException("not an http(s) URL: " + url, nameof(url));
        }

        bool ipv6 = uri.HostNameType == UriHostNameType.IPv6;
        string host = ipv6 ? uri.Host.Trim('[', ']') : uri.IdnHost;
        string hostHeader = (ipv6 ? "[" + host + "]" : host) + (uri.IsDefaultPort ? string.Empty : ":" + uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return new S2HttpOrigin(tls, host, uri.Port, hostHeader);
    }
}

/// <summary>
/// HTTP/1.1 client for one origin with a small keep-alive pool: a request takes the most recently used idle
/// connection (checked for a close by the peer first) or opens a new one; a response whose body was read to the
/// end on a keep-alive connection hands it back. Any error, <c>Connection: close</c>, or an unread body closes it.
/// </summary>
/// <remarks>
/// A request is never sent twice, with one exception: a GET whose reused connection failed before any answer
/// byte arrived (the peer closed it while idle) is repeated once on a new connection. A POST in that situation
/// may have been processed, so the failure surfaces (a retryable network error for the caller to reconcile).
/// </remarks>
internal sealed class S2HttpConnectionPool : IS2HttpTransport
{
    private readonly S2HttpOrigin _origin;
    private readonly S2HttpPoolOptions _options;
    private readonly List<S2HttpConnection> _idle = []; // oldest first
    private bool _disposed;

    public S2HttpConnectionPool(S2HttpOrigin origin, S2HttpPoolOptions options)
    {
        ArgumentNullException.ThrowIfNull(origin);
        ArgumentNullException.ThrowIfNull(options);
        if (!S2HttpHeaders.IsValidValue(origin.HostHeader))
        {
            throw new ArgumentException("invalid host: " + origin.HostHeader, nameof(origin));
        }

        _origin = origin;
        _options = options;
    }

    /// <summary>Idle connections currently pooled (tests).</summary>
    internal int IdleCount
    {
        get
        {
            lock (_idle)
            {
                return _idle.Count;
            }
        }
    }

    public async Task<S2HttpResponse> SendAsync(S2HttpRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(_disposed, this);
        bool retried = false;
        while (true)
        {
            S2HttpConnection? connection = retried ? null : TakeIdle();
            bool reused = connection is not null;
            connection ??= await S2HttpConnection.ConnectAsync(_origin, _options, cancellationToken).ConfigureAwait(false);
            try
            {
                await connection.WriteRequestAsync(request, _origin.HostHeader, !_options.ReuseConnections, cancellationToken).ConfigureAwait(false);
                S2HttpResponseHead head = await connection.ReadResponseHeadAsync(_options.ReuseConnections, _options.MaxResponseBodyBytes, cancellationToken).ConfigureAwait(false);
                return new S2HttpResponse(head.StatusCode, head.ReasonPhrase, head.Headers, connection, this);
            }
            catch (IOException e) when (reused && request.IsIdempotent && !connection.ReceivedResponseBytes
                                        && e is not S2HttpProtocolException && !cancellationToken.IsCancellationRequested)
            {
                connection.Dispose();
                retried = true;
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }
    }

    /// <summary>Takes back a connection after its response was disposed: pooled if reusable, else closed.</summary>
    internal void Return(S2HttpConnection connection)
    {
        long now = Environment.TickCount64;
        if (!_options.ReuseConnections || !connection.CanReuse || !Within(now - connection.CreatedAt, _options.ConnectionLifetime))
        {
            connection.Dispose();
            return;
        }

        connection.IdleSince = now;
        List<S2HttpConnection>? evicted = null;
        lock (_idle)
        {
            if (_disposed || _options.MaxIdleConnections <= 0)
            {
                (evicted = []).Add(connection);
            }
            else
            {
                // Oldest first: drop the ones over the limit or idle too long.
                while (_idle.Count > 0 && (_idle.Count >= _options.MaxIdleConnections || !Within(now - _idle[0].IdleSince, _options.IdleTimeout)))
                {
                    (evicted ??= []).Add(_idle[0]);
                    _idle.RemoveAt(0);
                }

                _idle.Add(connection);
            }
        }

        if (evicted is not null)
        {
            foreach (S2HttpConnection stale in evicted)
            {
                stale.Dispose();
            }
        }
    }

    public void Dispose()
    {
        S2HttpConnection[] idle;
        lock (_idle)
        {
            _disposed = true;
            idle = [.. _idle];
            _idle.Clear();
        }

        foreach (S2HttpConnection connection in idle)
        {
            connection.Dispose();
        }
    }

    /// <summary>The most recently used idle connection that is still fresh and not closed by the peer.</summary>
    private S2HttpConnection? TakeIdle()
    {
        while (true)
        {
            S2HttpConnection connection;
            lock (_idle)
            {
                if (_idle.Count == 0)
                {
                    return null;
                }

                connection = _idle[^1];
                _idle.RemoveAt(_idle.Count - 1);
            }

            long now = Environment.TickCount64;
            if (Within(now - connection.IdleSince, _options.IdleTimeout)
                && Within(now - connection.CreatedAt, _options.ConnectionLifetime)
                && connection.IsIdleAlive())
            {
                return connection;
            }

            connection.Dispose();
        }
    }

    private static bool Within(long elapsedMs, TimeSpan limit) => limit == Timeout.InfiniteTimeSpan || elapsedMs < limit.TotalMilliseconds;
}
