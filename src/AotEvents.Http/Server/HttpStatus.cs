using System.Text;

namespace AotEvents.Http.Server;

/// <summary>Pre-encoded status lines, header names and the server's own error responses.</summary>
internal static class HttpStatus
{
    internal static ReadOnlySpan<byte> ContentTypeHeader => "Content-Type: "u8;
    internal static ReadOnlySpan<byte> ContentLengthHeader => "Content-Length: "u8;
    internal static ReadOnlySpan<byte> ConnectionClose => "Connection: close\r\n"u8;
    internal static ReadOnlySpan<byte> ConnectionKeepAlive => "Connection: keep-alive\r\n"u8;
    internal static ReadOnlySpan<byte> Continue => "HTTP/1.1 100 Continue\r\n\r\n"u8;
    internal static ReadOnlySpan<byte> Crlf => "\r\n"u8;

    /// <summary>Longest status line <see cref="WriteStatusLine"/> produces.</summary>
    internal const int MaxStatusLineLength = 64;

    /// <summary>"HTTP/1.1 NNN Reason\r\n" for the codes we know; empty otherwise.</summary>
    internal static ReadOnlySpan<byte> KnownStatusLine(int status) => status switch
    {
        200 => "HTTP/1.1 200 OK\r\n"u8,
        201 => "HTTP/1.1 201 Created\r\n"u8,
        202 => "HTTP/1.1 202 Accepted\r\n"u8,
        204 => "HTTP/1.1 204 No Content\r\n"u8,
        206 => "HTTP/1.1 206 Partial Content\r\n"u8,
        301 => "HTTP/1.1 301 Moved Permanently\r\n"u8,
        302 => "HTTP/1.1 302 Found\r\n"u8,
        303 => "HTTP/1.1 303 See Other\r\n"u8,
        304 => "HTTP/1.1 304 Not Modified\r\n"u8,
        307 => "HTTP/1.1 307 Temporary Redirect\r\n"u8,
        308 => "HTTP/1.1 308 Permanent Redirect\r\n"u8,
        400 => "HTTP/1.1 400 Bad Request\r\n"u8,
        401 => "HTTP/1.1 401 Unauthorized\r\n"u8,
        403 => "HTTP/1.1 403 Forbidden\r\n"u8,
        404 => "HTTP/1.1 404 Not Found\r\n"u8,
        405 => "HTTP/1.1 405 Method Not Allowed\r\n"u8,
        406 => "HTTP/1.1 406 Not Acceptable\r\n"u8,
        408 => "HTTP/1.1 408 Request Timeout\r\n"u8,
        409 => "HTTP/1.1 409 Conflict\r\n"u8,
        410 => "HTTP/1.1 410 Gone\r\n"u8,
        411 => "HTTP/1.1 411 Length Required\r\n"u8,
        412 => "HTTP/1.1 412 Precondition Failed\r\n"u8,
        413 => "HTTP/1.1 413 Content Too Large\r\n"u8,
        414 => "HTTP/1.1 414 URI Too Long\r\n"u8,
        415 => "HTTP/1.1 415 Unsupported Media Type\r\n"u8,
        416 => "HTTP/1.1 416 Range Not Satisfiable\r\n"u8,
        417 => "HTTP/1.1 417 Expectation Failed\r\n"u8,
        422 => "HTTP/1.1 422 Unprocessable Content\r\n"u8,
        426 => "HTTP/1.1 426 Upgrade Required\r\n"u8,
        428 => "HTTP/1.1 428 Precondition Required\r\n"u8,
        429 => "HTTP/1.1 429 Too Many Requests\r\n"u8,
        431 => "HTTP/1.1 431 Request Header Fields Too Large\r\n"u8,
        500 => "HTTP/1.1 500 Internal Server Error\r\n"u8,
        501 => "HTTP/1.1 501 Not Implemented\r\n"u8,
        502 => "HTTP/1.1 502 Bad Gateway\r\n"u8,
        503 => "HTTP/1.1 503 Service Unavailable\r\n"u8,
        504 => "HTTP/1.1 504 Gateway Timeout\r\n"u8,
        505 => "HTTP/1.1 505 HTTP Version Not Supported\r\n"u8,
        507 => "HTTP/1.1 507 Insufficient Storage\r\n"u8,
        _ => default,
    };

    /// <summary>Writes the status line for <paramref name="status"/> (100..999) into <paramref name="destination"/>.</summary>
    internal static int WriteStatusLine(int status, Span<byte> destination)
    {
        ReadOnlySpan<byte> known = KnownStatusLine(status);
        if (!known.IsEmpty)
        {
            known.CopyTo(destination);
            return known.Length;
        }
        // Unknown code: the reason phrase may be empty (RFC 9112 §4).
        "HTTP/1.1 "u8.CopyTo(destination);
        destination[9] = (byte)('0' + (status / 100));
        destination[10] = (byte)('0' + (status / 10 % 10));
        destination[11] = (byte)('0' + (status % 10));
        destination[12] = (byte)' ';
        destination[13] = (byte)'\r';
        destination[14] = (byte)'\n';
        return 15;
    }

    internal static readonly byte[] BadRequest = Error(400, "malformed request");
    internal static readonly byte[] RequestTimeout = Error(408, "request not received in time");
    internal static readonly byte[] ContentTooLarge = Error(413, "request body too large");
    internal static readonly byte[] HeadersTooLarge = Error(431, "request header fields too large");
    internal static readonly byte[] InternalServerError = Error(500, "internal server error");
    internal static readonly byte[] NotImplemented = Error(501, "transfer coding not implemented");
    internal static readonly byte[] ServiceUnavailable = Error(503, "too many connections");
    internal static readonly byte[] VersionNotSupported = Error(505, "HTTP version not supported");

    internal static byte[] ErrorResponse(int status) => status switch
    {
        400 => BadRequest,
        408 => RequestTimeout,
        413 => ContentTooLarge,
        431 => HeadersTooLarge,
        501 => NotImplemented,
        503 => ServiceUnavailable,
        505 => VersionNotSupported,
        _ => InternalServerError,
    };

    /// <summary>A complete 'Connection: close' response with the daemon's JSON error body.</summary>
    private static byte[] Error(int status, string message)
    {
        string body = "{\"message\":\"" + message + "\"}";
        string head = Encoding.ASCII.GetString(KnownStatusLine(status))
            + "Content-Type: application/json\r\nContent-Length: " + body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)
            + "\r\nConnection: close\r\n\r\n";
        return Encoding.ASCII.GetBytes(head + body);
    }
}
