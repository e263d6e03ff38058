namespace AotEvents.Http.Server;

/// <summary>Limits and timeouts of <see cref="HttpServer"/>. All have the daemon's defaults (SPEC §8).</summary>
public sealed class HttpServerOptions
{
    /// <summary>IP address or host name to listen on; <c>0.0.0.0</c>/<c>::</c>/<c>*</c> for all interfaces.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks any free port (see <see cref="HttpServer.Start"/>).</summary>
    public int Port { get; init; } = 10001;

    /// <summary>Largest request head (request line + header fields + blank line); 431 and close above.</summary>
    public int MaxHeaderBytes { get; init; } = 16 * 1024;

    /// <summary>Largest request body; 413 and close above (checked on Content-Length before reading, and while de-chunking).</summary>
    public long MaxBodyBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>A whole request (head and body) must arrive within this time of its first byte; else 408 and close.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A keep-alive connection with no request in progress is closed after this time (never while a handler runs or streams).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// A single send (buffered responses or one <see cref="HttpStream.WriteAsync"/>) that cannot complete within this
    /// time aborts the connection: a client that stops reading cannot pin a connection or a streaming handler.
    /// </summary>
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Open connections beyond this are answered 503 and closed.</summary>
    public int MaxConnections { get; init; } = 10000;

    /// <summary>Listen backlog.</summary>
    public int Backlog { get; init; } = 511;

    /// <summary>
    /// Most 4 KiB buffers kept in the server's pool for reuse (bytes kept idle at most = this × 4 KiB).
    /// 0 picks 32 per processor.
    /// </summary>
    public int MaxPooledBuffers { get; init; }

    /// <summary>Receives one human-readable message per notable event (handler exception, accept failure).</summary>
    public Action<string>? Log { get; init; }
}
