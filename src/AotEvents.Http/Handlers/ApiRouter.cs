using System.Security.Cryptography;
using System.Text;
using AotEvents.Http.Server;

namespace AotEvents.Http.Handlers;

/// <summary>
/// The daemon's routes (SPEC §2–§4, §7, §8): bearer auth, CORS, then dispatch by path; a known path
/// with the wrong method is 405, an unknown one 404. Paths are matched as bytes.
/// </summary>
public sealed class ApiRouter : IHttpHandler
{
    private readonly DaemonContext _context;
    private readonly PublishHandler _publish;
    private readonly SessionHandlers _sessions;
    private readonly StreamHandler _stream;
    private readonly ArchiveHandler _archive;
    private readonly MetricsHandler _metrics;
    private readonly byte[]? _expectedAuthorization;
    private readonly byte[][] _corsOrigins;
    private readonly bool _corsAnyOrigin;

    /// <summary>Every route the daemon serves, with its methods (the OpenAPI document must list the same).</summary>
    public static readonly IReadOnlyList<(string Path, string Method)> Routes =
    [
        ("/healthz", "GET"),
        ("/metrics", "GET"),
        ("/openapi.yaml", "GET"),
        ("/events/start", "POST"),
        ("/events/session", "GET"),
        ("/events/stop", "POST"),
        ("/events/publish", "POST"),
        ("/events/stream", "GET"),
        ("/telemetry/events", "GET"),
    ];

    public ApiRouter(DaemonContext context)
    {
        _context = context;
        _publish = new PublishHandler(context);
        _sessions = new SessionHandlers(context);
        _stream = new StreamHandler(context);
        _archive = new ArchiveHandler(context);
        _metrics = new MetricsHandler(context);
        if (context.Config.ApiToken is { } token) _expectedAuthorization = Encoding.UTF8.GetBytes("Bearer " + token);
        string[] origins = context.Config.CorsOrigins;
        _corsAnyOrigin = Array.IndexOf(origins, "*") >= 0;
        _corsOrigins = new byte[origins.Length][];
        for (int i = 0; i < origins.Length; i++) _corsOrigins[i] = Encoding.UTF8.GetBytes(origins[i]);
    }

    public ValueTask HandleAsync(HttpRequest request, HttpResponse response)
    {
        ReadOnlySpan<byte> path = request.Path;
        bool cors = AddCorsHeaders(request, response);
        if (request.Method == HttpMethod.Options && cors)
        {
            // Preflight: answered without auth (browsers never send credentials on it).
            response.AddHeader("Access-Control-Allow-Methods"u8, "GET, POST, OPTIONS"u8);
            response.AddHeader("Access-Control-Allow-Headers"u8, "Content-Type, Authorization, Last-Event-ID"u8);
            response.AddHeader("Access-Control-Max-Age"u8, "600"u8);
            response.Write(204, default, default);
            return default;
        }

        if (path.SequenceEqual("/healthz"u8))
        {
            if (!IsGet(request, response)) return default;
            response.Write(200, Responses.Json, "{\"status\":\"ok\"}"u8);
            return default;
        }

        if (!IsKnownPath(path))
        {
            Responses.Message(response, 404, "no such endpoint: " + Encoding.UTF8.GetString(path));
            return default;
        }

        if (!IsAuthorized(request, path))
        {
            response.AddHeader("WWW-Authenticate"u8, "Bearer"u8);
            Responses.Message(response, 401, "missing or invalid bearer token");
            return default;
        }

        if (path.SequenceEqual("/events/publish"u8))
            return IsPost(request, response) ? _publish.HandleAsync(request, response) : default;
        if (path.SequenceEqual("/events/stream"u8))
            return IsGet(request, response) ? _stream.HandleAsync(request, response) : default;
        if (path.SequenceEqual("/events/start"u8))
        {
            if (IsPost(request, response)) _sessions.Start(request, response);
            return default;
        }
        if (path.SequenceEqual("/events/stop"u8))
        {
            if (IsPost(request, response)) _sessions.Stop(response);
            return default;
        }
        if (path.SequenceEqual("/events/session"u8))
        {
            if (IsGet(request, response)) _sessions.Get(response);
            return default;
        }
        if (path.SequenceEqual("/telemetry/events"u8))
            return IsGet(request, response) ? _archive.HandleAsync(request, response) : default;
        if (path.SequenceEqual("/metrics"u8))
        {
            if (IsGet(request, response)) _metrics.Write(response);
            return default;
        }
        if (IsGet(request, response)) OpenApiDocument.Write(response);
        return default;
    }

    private static readonly byte[][] RoutePaths = EncodePaths();

    private static byte[][] EncodePaths()
    {
        var paths = new byte[Routes.Count][];
        for (int i = 0; i < paths.Length; i++) paths[i] = Encoding.ASCII.GetBytes(Routes[i].Path);
        return paths;
    }

    private static bool IsKnownPath(ReadOnlySpan<byte> path)
    {
        foreach (byte[] p in RoutePaths)
            if (path.SequenceEqual(p)) return true;
        return false;
    }

    private static bool IsGet(HttpRequest request, HttpResponse response) =>
        request.Method == HttpMethod.Get || MethodNotAllowed(response, "GET"u8);

    private static bool IsPost(HttpRequest request, HttpResponse response) =>
        request.Method == HttpMethod.Post || MethodNotAllowed(response, "POST"u8);

    private static bool MethodNotAllowed(HttpResponse response, ReadOnlySpan<byte> allowed)
    {
        response.AddHeader("Allow"u8, allowed);
        Responses.Message(response, 405, "method not allowed; use " + Encoding.ASCII.GetString(allowed));
        return false;
    }

    private bool IsAuthorized(HttpRequest request, ReadOnlySpan<byte> path)
    {
        if (_expectedAuthorization is null) return true;
        ReadOnlySpan<byte> given = request.GetHeader("Authorization"u8);
        if (!given.IsEmpty)
            return CryptographicOperations.FixedTimeEquals(given, _expectedAuthorization);
        // EventSource cannot send headers: the stream also takes ?access_token=.
        if (path.SequenceEqual("/events/stream"u8) && request.TryGetQuery("access_token"u8, out string token))
            return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes("Bearer " + token), _expectedAuthorization);
        return false;
    }

    /// <summary>Adds the CORS answer headers when the request's Origin is allowed; true if it is.</summary>
    private bool AddCorsHeaders(HttpRequest request, HttpResponse response)
    {
        if (_corsOrigins.Length == 0) return false;
        ReadOnlySpan<byte> origin = request.GetHeader("Origin"u8);
        if (origin.IsEmpty) return false;
        bool allowed = _corsAnyOrigin;
        foreach (byte[] o in _corsOrigins)
            allowed |= origin.SequenceEqual(o);
        if (!allowed) return false;
        response.AddHeader("Access-Control-Allow-Origin"u8, _corsAnyOrigin ? "*"u8 : origin);
        if (!_corsAnyOrigin) response.AddHeader("Vary"u8, "Origin"u8);
        response.AddHeader("Access-Control-Expose-Headers"u8, "X-Ack, X-Has-More, X-Next-Offset"u8);
        return true;
    }
}
