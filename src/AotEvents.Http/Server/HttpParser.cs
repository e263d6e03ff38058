using System.Buffers;
using System.Text;

namespace AotEvents.Http.Server;

internal enum ParseStatus : byte
{
    Incomplete,
    Complete,
    BadRequest,
    HeadersTooLarge,
    VersionNotSupported,
    NotImplemented,
}

/// <summary>
/// Parses a request head in place: no copies, no strings. Lines end in CRLF; a bare LF is accepted too
/// (RFC 9112 §2.2). Obsolete line folding, whitespace before a field's colon, control characters in a field value,
/// conflicting Content-Length fields, and Content-Length together with Transfer-Encoding are refused (400).
/// </summary>
internal static class HttpParser
{
    private static readonly SearchValues<byte> s_tokenChars =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    // CTLs except HTAB, and DEL: never valid in a field value (a lone CR in a line lands here too).
    private static readonly SearchValues<byte> s_invalidValueChars = SearchValues.Create(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127]);

    internal static bool IsToken(ReadOnlySpan<byte> span) => !span.IsEmpty && span.IndexOfAnyExcept(s_tokenChars) < 0;

    internal static bool IsValidFieldValue(ReadOnlySpan<byte> span) => span.IndexOfAny(s_invalidValueChars) < 0;

    /// <summary>
    /// Tries to parse the head at the start of <paramref name="input"/> (the caller has skipped blank lines before the
    /// request line). On <see cref="ParseStatus.Incomplete"/> the request remembers how far it searched, so a head that
    /// arrives in many pieces is scanned once; call <see cref="HttpRequest.ResetParse"/> before a new request.
    /// </summary>
    internal static ParseStatus TryParseHead(ReadOnlySpan<byte> input, HttpRequest request, int maxHeadBytes, out int headLength)
    {
        headLength = 0;

        // Pass 1: find the blank line that ends the head, resuming where the previous call stopped.
        int lineStart = request._scanLineStart;
        int position = request._scanPosition;
        int end = -1;
        while (true)
        {
            int lf = input[position..].IndexOf((byte)'\n');
            if (lf < 0)
            {
                break;
            }
            lf += position;
            int lineLength = lf - lineStart;
            if (lineLength == 0 || (lineLength == 1 && input[lineStart] == (byte)'\r'))
            {
                end = lf + 1;
                break;
            }
            lineStart = position = lf + 1;
        }
        if (end < 0)
        {
            request._scanLineStart = lineStart;
            request._scanPosition = input.Length;
            return input.Length >= maxHeadBytes ? ParseStatus.HeadersTooLarge : ParseStatus.Incomplete;
        }
        if (end > maxHeadBytes)
        {
            return ParseStatus.HeadersTooLarge;
        }
        if (lineStart == 0)
        {
            return ParseStatus.BadRequest; // the head starts with a blank line: no request line
        }

        // Pass 2: the request line, then one header field per line.
        int firstLf = input.IndexOf((byte)'\n');
        ParseStatus status = ParseRequestLine(TrimCr(input[..firstLf]), request);
        if (status != ParseStatus.Complete)
        {
            return status;
        }
        int p = firstLf + 1;
        while (true)
        {
            int lf = input[p..].IndexOf((byte)'\n') + p;
            ReadOnlySpan<byte> line = TrimCr(input[p..lf]);
            if (line.IsEmpty)
            {
                break;
            }
            status = ParseHeaderLine(line, p, request);
            if (status != ParseStatus.Complete)
            {
                return status;
            }
            p = lf + 1;
        }
        if (request._chunked && request._contentLength >= 0)
        {
            return ParseStatus.BadRequest; // request smuggling shape (RFC 9112 §6.3)
        }
        headLength = end;
        return ParseStatus.Complete;
    }

    private static ReadOnlySpan<byte> TrimCr(ReadOnlySpan<byte> line) =>
        !line.IsEmpty && line[^1] == (byte)'\r' ? line[..^1] : line;

    private static ParseStatus ParseRequestLine(ReadOnlySpan<byte> line, HttpRequest request)
    {
        int sp1 = line.IndexOf((byte)' ');
        if (sp1 <= 0)
        {
            return ParseStatus.BadRequest;
        }
        ReadOnlySpan<byte> method = line[..sp1];
        if (!IsToken(method))
        {
            return ParseStatus.BadRequest;
        }
        int targetStart = sp1 + 1;
        int sp2 = line[targetStart..].IndexOf((byte)' ');
        if (sp2 <= 0)
        {
            return ParseStatus.BadRequest;
        }
        ReadOnlySpan<byte> target = line.Slice(targetStart, sp2);
        ReadOnlySpan<byte> version = line[(targetStart + sp2 + 1)..];

        if (version.SequenceEqual("HTTP/1.1"u8))
        {
            request._http11 = true;
        }
        else if (version.SequenceEqual("HTTP/1.0"u8))
        {
            request._http11 = false;
        }
        else if (version.Length == 8 && version.StartsWith("HTTP/"u8) && char.IsAsciiDigit((char)version[5])
                 && version[6] == (byte)'.' && char.IsAsciiDigit((char)version[7]))
        {
            return ParseStatus.VersionNotSupported;
        }
        else
        {
            return ParseStatus.BadRequest;
        }

        // No whitespace, controls or DEL in the target (non-ASCII bytes are let through: some clients send raw UTF-8).
        if (target.IndexOfAnyInRange((byte)0, (byte)' ') >= 0 || target.Contains((byte)127))
        {
            return ParseStatus.BadRequest;
        }

        int pathStart = targetStart;
        ReadOnlySpan<byte> path = target;
        if (target[0] == (byte)'/')
        {
            // origin-form
        }
        else if (target.Length == 1 && target[0] == (byte)'*')
        {
            // asterisk-form (OPTIONS *)
        }
        else
        {
            // absolute-form: skip scheme and authority.
            int schemeEnd = target.IndexOf("://"u8);
            if (schemeEnd <= 0 || !(Ascii.EqualsIgnoreCase(target[..schemeEnd], "http"u8) || Ascii.EqualsIgnoreCase(target[..schemeEnd], "https"u8)))
            {
                return ParseStatus.BadRequest;
            }
            int authorityStart = schemeEnd + 3;
            int slash = target[authorityStart..].IndexOfAny((byte)'/', (byte)'?');
            if (slash < 0)
            {
                path = default;
                pathStart = targetStart + target.Length;
            }
            else
            {
                pathStart = targetStart + authorityStart + slash;
                path = target[(authorityStart + slash)..];
            }
        }

        int question = path.IndexOf((byte)'?');
        request._targetStart = targetStart;
        request._targetLength = target.Length;
        request._pathStart = pathStart;
        if (question < 0)
        {
            request._pathLength = path.Length;
            request._queryStart = pathStart + path.Length;
            request._queryLength = 0;
        }
        else
        {
            request._pathLength = question;
            request._queryStart = pathStart + question + 1;
            request._queryLength = path.Length - question - 1;
        }
        request._methodLength = method.Length;
        request._method = ParseMethod(method);
        return ParseStatus.Complete;
    }

    internal static HttpMethod ParseMethod(ReadOnlySpan<byte> method) => method.Length switch
    {
        3 when method.SequenceEqual("GET"u8) => HttpMethod.Get,
        3 when method.SequenceEqual("PUT"u8) => HttpMethod.Put,
        4 when method.SequenceEqual("POST"u8) => HttpMethod.Post,
        4 when method.SequenceEqual("HEAD"u8) => HttpMethod.Head,
        5 when method.SequenceEqual("PATCH"u8) => HttpMethod.Patch,
        6 when method.SequenceEqual("DELETE"u8) => HttpMethod.Delete,
        7 when method.SequenceEqual("OPTIONS"u8) => HttpMethod.Options,
        _ => HttpMethod.Other,
    };

    private static ParseStatus ParseHeaderLine(ReadOnlySpan<byte> line, int lineOffset, HttpRequest request)
    {
        if (line[0] is (byte)' ' or (byte)'\t')
        {
            return ParseStatus.BadRequest; // obs-fold
        }
        int colon = line.IndexOf((byte)':');
        if (colon <= 0)
        {
            return ParseStatus.BadRequest;
        }
        ReadOnlySpan<byte> name = line[..colon];
        if (!IsToken(name))
        {
            return ParseStatus.BadRequest; // includes whitespace before the colon
        }
        int valueStart = colon + 1;
        int valueEnd = line.Length;
        while (valueStart < valueEnd && line[valueStart] is (byte)' ' or (byte)'\t')
        {
            valueStart++;
        }
        while (valueEnd > valueStart && line[valueEnd - 1] is (byte)' ' or (byte)'\t')
        {
            valueEnd--;
        }
        ReadOnlySpan<byte> value = line[valueStart..valueEnd];
        if (!IsValidFieldValue(value))
        {
            return ParseStatus.BadRequest;
        }

        if (request._headerCount == request._headers.Length)
        {
            Array.Resize(ref request._headers, request._headers.Length * 2);
        }
        ref HeaderEntry entry = ref request._headers[request._headerCount++];
        entry.NameStart = lineOffset;
        entry.NameLength = name.Length;
        entry.ValueStart = lineOffset + valueStart;
        entry.ValueLength = value.Length;

        switch (name.Length)
        {
            case 14 when Ascii.EqualsIgnoreCase(name, "Content-Length"u8):
                if (!TryParseContentLength(value, out long length)
                    || (request._contentLength >= 0 && request._contentLength != length))
                {
                    return ParseStatus.BadRequest;
                }
                request._contentLength = length;
                break;
            case 17 when Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8):
                if (request._chunked)
                {
                    return ParseStatus.BadRequest; // chunked applied twice
                }
                if (!Ascii.EqualsIgnoreCase(value, "chunked"u8))
                {
                    return ParseStatus.NotImplemented; // gzip, identity, …: not supported
                }
                request._chunked = true;
                break;
            case 10 when Ascii.EqualsIgnoreCase(name, "Connection"u8):
                ParseConnection(value, request);
                break;
            case 6 when Ascii.EqualsIgnoreCase(name, "Expect"u8):
                if (Ascii.EqualsIgnoreCase(value, "100-continue"u8))
                {
                    request._expectContinue = true;
                }
                break;
        }
        return ParseStatus.Complete;
    }

    private static bool TryParseContentLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.IsEmpty || value.Length > 18)
        {
            return false;
        }
        foreach (byte b in value)
        {
            uint digit = (uint)(b - '0');
            if (digit > 9)
            {
                return false;
            }
            length = (length * 10) + digit;
        }
        return true;
    }

    private static void ParseConnection(ReadOnlySpan<byte> value, HttpRequest request)
    {
        while (!value.IsEmpty)
        {
            int comma = value.IndexOf((byte)',');
            ReadOnlySpan<byte> token = (comma < 0 ? value : value[..comma]).Trim(" \t"u8);
            value = comma < 0 ? default : value[(comma + 1)..];
            if (Ascii.EqualsIgnoreCase(token, "close"u8))
            {
                request._connectionClose = true;
            }
            else if (Ascii.EqualsIgnoreCase(token, "keep-alive"u8))
            {
                request._connectionKeepAlive = true;
            }
        }
    }
}
