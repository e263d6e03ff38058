namespace AotEvents.S2;

/// <summary>
/// The resolved address of a basin: the base URI every path is appended to, and the value of the
/// <c>s2-basin</c> header (null when the basin is in the host name).
/// </summary>
/// <remarks>
/// Mirrors the official SDKs' endpoint rules: no scheme → https; no path → <c>/v1</c>; <c>{basin}</c> is
/// substituted (verbatim in the host, percent-encoded in the path); the header is sent whenever a
/// custom endpoint is configured. One deviation: a bare trailing <c>/</c> counts as "no path", so
/// <c>http://127.0.0.1:8080/</c> means the same as <c>http://127.0.0.1:8080</c>.
/// </remarks>
public sealed class S2Endpoint
{
    /// <summary>Default basin endpoint of S2 cloud (SPEC §6 <c>S2_ENDPOINT</c> default).</summary>
    public const string DefaultTemplate = "https://{basin}.b.s2.dev";

    /// <summary>API path prefix of the official REST API (servers url of openapi.json).</summary>
    public const string DefaultApiPath = "/v1";

    private S2Endpoint(string baseUrl, string? basinHeader)
    {
        BaseUrl = baseUrl;
        BasinHeader = basinHeader;
        TargetStart = baseUrl.IndexOf('/', baseUrl.IndexOf("://", StringComparison.Ordinal) + 3);
    }

    /// <summary>Base URL without trailing slash, e.g. <c>https://my-basin.b.s2.dev/v1</c>.</summary>
    public string BaseUrl { get; }

    /// <summary>Value for the <c>s2-basin</c> header, or null when it is not sent.</summary>
    public string? BasinHeader { get; }

    /// <summary>Where the path starts in <see cref="BaseUrl"/> and every URL built from it (the request target).</summary>
    internal int TargetStart { get; }

    /// <summary>Resolves <paramref name="options"/> into a base URL and the header rule.</summary>
    /// <exception cref="ArgumentException">The basin is empty or the endpoint is not an http(s) URL.</exception>
    public static S2Endpoint Resolve(S2Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Basin))
        {
            throw new ArgumentException("S2 basin must not be empty", nameof(options));
        }

        string basin = options.Basin.Trim();
        bool custom = !string.IsNullOrWhiteSpace(options.Endpoint);
        string template = custom ? options.Endpoint!.Trim() : DefaultTemplate;
        if (!template.Contains("://", StringComparison.Ordinal))
        {
            template = "https://" + template;
        }

        int schemeEnd = template.IndexOf("://", StringComparison.Ordinal);
        string scheme = template[..schemeEnd].ToLowerInvariant();
        if (scheme is not ("http" or "https"))
        {
            throw new ArgumentException($"S2 endpoint must be http or https: '{options.Endpoint}'", nameof(options));
        }

        int authorityStart = schemeEnd + 3;
        int pathStart = template.IndexOfAny(['/', '?', '#'], authorityStart);
        string authority = pathStart < 0 ? template[authorityStart..] : template[authorityStart..pathStart];
        string path = pathStart < 0 ? string.Empty : template[pathStart..];
        if (path.Length > 0 && path[0] != '/')
        {
            throw new ArgumentException($"S2 endpoint must not have a query or fragment: '{options.Endpoint}'", nameof(options));
        }

        if (authority.Length == 0)
        {
            throw new ArgumentException($"S2 endpoint has no host: '{options.Endpoint}'", nameof(options));
        }

        authority = authority.Replace("{basin}", basin, StringComparison.Ordinal);
        path = path.Replace("{basin}", Uri.EscapeDataString(basin), StringComparison.Ordinal).TrimEnd('/');
        if (path.Length == 0)
        {
            path = DefaultApiPath;
        }

        string baseUrl = scheme + "://" + authority + path;
        if (!Uri.TryCreate(baseUrl, UriKind.Absolute, out _))
        {
            throw new ArgumentException($"S2 endpoint is not a valid URL: '{options.Endpoint}'", nameof(options));
        }

        bool header = options.SendBasinHeader ?? custom;
        return new S2Endpoint(baseUrl, header ? basin : null);
    }

    /// <summary>URL of a stream's resource, e.g. <c>{base}/streams/{stream}/records</c>.</summary>
    internal string StreamUrl(string stream, string? suffix = null)
        => BaseUrl + "/streams/" + Uri.EscapeDataString(stream) + suffix;

    /// <summary>URL of the streams collection (<c>{base}/streams</c>).</summary>
    internal string StreamsUrl => BaseUrl + "/streams";
}
