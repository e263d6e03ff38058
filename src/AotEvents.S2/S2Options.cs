namespace AotEvents.S2;

/// <summary>Where and how to reach one S2 basin.</summary>
public sealed class S2Options
{
    /// <summary>Basin name (<c>S2_BASIN</c>).</summary>
    public required string Basin { get; init; }

    /// <summary>Access token sent as <c>Authorization: Bearer …</c> (<c>S2_ACCESS_TOKEN</c>).</summary>
    public required string AccessToken { get; init; }

    /// <summary>
    /// Basin endpoint (<c>S2_ENDPOINT</c>). <c>null</c> → <c>https://{basin}.b.s2.dev</c>, the basin in the
    /// host name. When set (e.g. <c>http://127.0.0.1:8080</c> for s2-lite or an emulator) the basin travels
    /// in the <c>s2-basin</c> header. The API path defaults to <c>/v1</c> as in the official spec and SDKs;
    /// an endpoint with an explicit path uses that path instead. <c>{basin}</c> may appear in the endpoint.
    /// </summary>
    public string? Endpoint { get; init; }

    /// <summary>
    /// Overrides the <c>s2-basin</c> header rule (sent iff <see cref="Endpoint"/> is set). Tests use it to
    /// drive host-style addressing against a local server.
    /// </summary>
    public bool? SendBasinHeader { get; init; }

    /// <summary>Deadline for one request, response body included. Expiry is a retryable timeout.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline for establishing a connection: DNS, TCP connect and TLS handshake (within <see cref="RequestTimeout"/>). Expiry is a retryable network error.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
