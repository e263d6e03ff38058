namespace AotEvents.S2;

/// <summary>How an S2 request failed.</summary>
public enum S2FailureKind
{
    /// <summary>The service answered with an error status (see <see cref="S2Exception.StatusCode"/>).</summary>
    Response,

    /// <summary>No usable answer: connection refused/reset/dropped, DNS, TLS, or a body cut short.</summary>
    Network,

    /// <summary><see cref="S2Options.RequestTimeout"/> expired before the answer was complete.</summary>
    Timeout,

    /// <summary>A success status whose body did not parse as the spec's shape.</summary>
    InvalidResponse,
}

/// <summary>
/// A failed S2 request, with the spec's error shapes parsed: <c>{code,message}</c>, 412
/// <c>{"seq_num_mismatch":n}</c> / <c>{"fencing_token_mismatch":t}</c>, 416 <c>{"tail":{…}}</c>.
/// </summary>
/// <remarks>
/// <para><b>Retryable</b> (<see cref="IsRetryable"/>): network errors, timeouts, garbled success bodies, and the
/// statuses 408 (timeout), 429 (rate_limited), every 5xx (500 other/storage, 502 hot_server, 503 unavailable,
/// 504), and 409 with code <c>transaction_conflict</c> — the same set the official SDKs retry.
/// <b>Not retryable</b>: every other 4xx — 400 bad request, 401/403 auth, 404 stream/basin not found,
/// 409 already exists / deletion pending, 412 append condition failed, 416 range not satisfiable,
/// 422 invalid — because repeating the same request gives the same answer.</para>
/// <para>An append that fails retryably may still have landed (e.g. the ack was lost). Appends that carry
/// <c>match_seq_num</c> are safe to repeat: a duplicate is refused with 412, whose
/// <see cref="ExpectedSeqNum"/> tells the caller where the stream now ends.</para>
/// </remarks>
public sealed class S2Exception : Exception
{
    /// <summary>Creates an exception; the client fills the details, tests may build their own.</summary>
    public S2Exception(string message, S2FailureKind kind = S2FailureKind.Response, int statusCode = 0, string? code = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        StatusCode = statusCode;
        Code = code;
    }

    /// <summary>Creates an exception with only a message (a <see cref="S2FailureKind.Response"/> with status 0).</summary>
    public S2Exception(string message)
        : this(message, S2FailureKind.Response)
    {
    }

    /// <summary>Creates an exception with a message and a cause.</summary>
    public S2Exception(string message, Exception innerException)
        : this(message, S2FailureKind.Network, 0, null, innerException)
    {
    }

    /// <summary>Creates an empty exception.</summary>
    public S2Exception()
        : this("S2 request failed")
    {
    }

    /// <summary>How the request failed.</summary>
    public S2FailureKind Kind { get; }

    /// <summary>HTTP status of the answer; 0 when there was none.</summary>
    public int StatusCode { get; }

    /// <summary>
    /// The service's error code (<c>stream_not_found</c>, <c>rate_limited</c>, …). For 412 it is the
    /// condition's key: <c>seq_num_mismatch</c> or <c>fencing_token_mismatch</c>.
    /// </summary>
    public string? Code { get; }

    /// <summary>412 <c>seq_num_mismatch</c>: the sequence number the next record would get (the stream's tail).</summary>
    public long? ExpectedSeqNum { get; init; }

    /// <summary>412 <c>fencing_token_mismatch</c>: the stream's current fencing token.</summary>
    public string? ExpectedFencingToken { get; init; }

    /// <summary>416: the stream's tail at the time of the read.</summary>
    public S2StreamPosition? Tail { get; init; }

    /// <summary>Server-advised wait before retrying (<c>retry-after-ms</c>, else <c>Retry-After</c>).</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Whether repeating the same request may succeed (see the remarks on the class).</summary>
    public bool IsRetryable => Kind != S2FailureKind.Response || IsRetryableStatus(StatusCode, Code);

    /// <summary>404 <c>stream_not_found</c>: create the stream, then repeat.</summary>
    public bool IsStreamNotFound => StatusCode == 404 && Code == "stream_not_found";

    /// <summary>404 <c>basin_not_found</c>.</summary>
    public bool IsBasinNotFound => StatusCode == 404 && Code == "basin_not_found";

    /// <summary>412 with <c>seq_num_mismatch</c>; <see cref="ExpectedSeqNum"/> holds the tail.</summary>
    public bool IsSeqNumMismatch => StatusCode == 412 && ExpectedSeqNum.HasValue;

    /// <summary>416: the read started beyond (or, without waiting, at) the tail; <see cref="Tail"/> holds it.</summary>
    public bool IsRangeNotSatisfiable => StatusCode == 416;

    /// <summary>401 or 403: the token is missing, invalid, or lacks permission.</summary>
    public bool IsAuthFailure => StatusCode is 401 or 403;

    /// <summary>The retry classification of an HTTP status and error code (see the remarks on the class).</summary>
    public static bool IsRetryableStatus(int statusCode, string? code) => statusCode switch
    {
        408 or 429 => true,
        409 => code == "transaction_conflict",
        >= 500 and <= 599 => true,
        _ => false,
    };
}
