using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace S2StandIn;

/// <summary>Settings of a stand-in.</summary>
public sealed class S2StandInOptions
{
    /// <summary>
    /// Bearer token the stand-in accepts; null accepts any non-empty bearer token. A missing
    /// <c>Authorization</c> is 401, a wrong token 403 <c>permission_denied</c>.
    /// </summary>
    public string? AccessToken { get; init; }

    /// <summary>Port on 127.0.0.1; 0 picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>Interval of SSE <c>ping</c> events while a read session waits at the tail.</summary>
    public TimeSpan PingInterval { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>One request the stand-in received.</summary>
/// <param name="At">Arrival time.</param>
/// <param name="Method">HTTP method.</param>
/// <param name="Target">Raw request target (path and query).</param>
/// <param name="Op">What kind of request it was.</param>
/// <param name="Basin">Basin it addressed (from <c>s2-basin</c> or the host name), if any.</param>
/// <param name="Stream">Stream it addressed, if any.</param>
/// <param name="Host">The <c>Host</c> header.</param>
/// <param name="Authorization">The <c>Authorization</c> header.</param>
/// <param name="BasinHeader">The <c>s2-basin</c> header.</param>
/// <param name="Format">The <c>s2-format</c> header.</param>
/// <param name="Accept">The <c>Accept</c> header.</param>
/// <param name="Status">Status answered; -1 when the connection was aborted.</param>
/// <param name="Fault">Fault injected into it.</param>
public sealed record S2StandInRequest(
    DateTimeOffset At,
    string Method,
    string Target,
    S2Op Op,
    string? Basin,
    string? Stream,
    string Host,
    string? Authorization,
    string? BasinHeader,
    string? Format,
    string? Accept,
    int Status,
    S2FaultKind Fault);

/// <summary>
/// An in-memory server that speaks the S2 REST API of openapi.json (basin-scoped part) on 127.0.0.1, for tests.
/// Start with <see cref="StartAsync"/>; point clients at <see cref="Endpoint"/> (as <c>S2_ENDPOINT</c>: the basin
/// then travels in the <c>s2-basin</c> header; the API lives under <c>/v1</c>). Host-style addressing
/// (<c>{basin}.b.s2.dev</c> in the <c>Host</c> header) is understood too.
/// </summary>
public sealed partial class S2StandIn : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly StandInStore _store = new();
    private readonly ConcurrentQueue<S2StandInRequest> _requests = new();
    private readonly CancellationTokenSource _shutdown = new();
    private readonly TimeSpan _pingInterval;
    private volatile string? _accessToken;
    private int _disposed;
    private int _refusedConnections;

    private S2StandIn(S2StandInOptions options)
    {
        _accessToken = options.AccessToken;
        _pingInterval = options.PingInterval;
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "S2StandIn",
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = 64 * 1024 * 1024;
            kestrel.Listen(IPAddress.Loopback, options.Port, listen =>
            {
                // Down in Abort mode: close connections as they arrive, before any HTTP is read.
                listen.Use(next => connection =>
                {
                    if (Faults.IsDown && Faults.DownMode == S2DownMode.Abort)
                    {
                        Interlocked.Increment(ref _refusedConnections);
                        connection.Abort();
                        return Task.CompletedTask;
                    }

                    return next(connection);
                });
            });
        });
        _app = builder.Build();
        _app.Run(HandleAsync);
    }

    /// <summary>Fault injection.</summary>
    public S2Faults Faults { get; } = new();

    /// <summary>Base address to give clients as their endpoint, e.g. <c>http://127.0.0.1:41234</c> (no path).</summary>
    public string Endpoint { get; private set; } = string.Empty;

    /// <summary>Base URL of the API: <see cref="Endpoint"/> + <c>/v1</c>.</summary>
    public string BaseUrl => Endpoint + "/v1";

    /// <summary>Port the stand-in listens on.</summary>
    public int Port { get; private set; }

    /// <summary>Bearer token required (null: any non-empty token). May be changed while running.</summary>
    public string? AccessToken
    {
        get => _accessToken;
        set => _accessToken = value;
    }

    /// <summary>Basin setting <c>create_stream_on_append</c>: an append to a missing stream creates it (default off → 404).</summary>
    public bool CreateStreamOnAppend { get; set; }

    /// <summary>Basin setting <c>create_stream_on_read</c>: a read or check-tail of a missing stream creates it (default off → 404).</summary>
    public bool CreateStreamOnRead { get; set; }

    /// <summary>Clock for service-assigned timestamps (ms since the Unix epoch).</summary>
    public Func<long> Clock { get; set; } = static () => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Every request received so far, oldest first.</summary>
    public IReadOnlyList<S2StandInRequest> Requests => [.. _requests];

    /// <summary>Number of requests received so far.</summary>
    public int RequestCount => _requests.Count;

    /// <summary>Connections closed on arrival while down in <see cref="S2DownMode.Abort"/> mode.</summary>
    public int RefusedConnections => Volatile.Read(ref _refusedConnections);

    /// <summary>Starts a stand-in on 127.0.0.1.</summary>
    public static async Task<S2StandIn> StartAsync(S2StandInOptions? options = null, CancellationToken cancellationToken = default)
    {
        var standIn = new S2StandIn(options ?? new S2StandInOptions());
        await standIn._app.StartAsync(cancellationToken).ConfigureAwait(false);
        string address = standIn._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address);
        standIn.Port = uri.Port;
        standIn.Endpoint = $"http://127.0.0.1:{uri.Port}";
        return standIn;
    }

    /// <summary>Requests of the given kinds received so far.</summary>
    public int CountOf(S2Op ops) => _requests.Count(r => (r.Op & ops) != 0);

    /// <summary>Forgets the request log.</summary>
    public void ClearRequests() => _requests.Clear();

    /// <summary>Whether the stream exists.</summary>
    public bool StreamExists(string basin, string stream) => _store.Find(basin, stream) is not null;

    /// <summary>Names of the basin's streams, sorted.</summary>
    public IReadOnlyList<string> Streams(string basin) => [.. _store.Basin(basin).Keys.Order(StringComparer.Ordinal)];

    /// <summary>Snapshot of a stream's records (empty when the stream does not exist).</summary>
    public IReadOnlyList<S2StandInRecord> Records(string basin, string stream)
    {
        StandInStream? s = _store.Find(basin, stream);
        if (s is null)
        {
            return [];
        }

        lock (s.Gate)
        {
            return [.. s.Records];
        }
    }

    /// <summary>Snapshot of a stream's record bodies as UTF-8 text.</summary>
    public IReadOnlyList<string> Bodies(string basin, string stream) => [.. Records(basin, stream).Select(r => r.BodyText)];

    /// <summary>The stream's tail, or null when it does not exist.</summary>
    public S2StandInPosition? Tail(string basin, string stream)
    {
        StandInStream? s = _store.Find(basin, stream);
        if (s is null)
        {
            return null;
        }

        lock (s.Gate)
        {
            return s.Tail;
        }
    }

    /// <summary>Creates a stream (no-op when it exists). Returns whether it was created.</summary>
    public bool CreateStream(string basin, string stream) => _store.GetOrCreate(basin, stream, DateTimeOffset.UtcNow, null).Created;

    /// <summary>Deletes a stream. Returns whether it existed.</summary>
    public bool DeleteStream(string basin, string stream) => _store.Delete(basin, stream);

    /// <summary>Appends records directly (test setup), creating the stream if needed. Returns the first sequence number.</summary>
    public long Append(string basin, string stream, params string[] bodies)
    {
        StandInStream s = _store.GetOrCreate(basin, stream, DateTimeOffset.UtcNow, null).Stream;
        lock (s.Gate)
        {
            long first = s.Records.Count;
            foreach (string body in bodies)
            {
                long ts = Math.Max(Clock(), s.LastTimestamp);
                s.Records.Add(new S2StandInRecord(s.Records.Count, ts, Encoding.UTF8.GetBytes(body), []));
                s.LastTimestamp = ts;
            }

            s.SignalAppended();
            return first;
        }
    }

    /// <summary>Stops the server (open read sessions are ended).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _shutdown.CancelAsync().ConfigureAwait(false);
        using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _app.StopAsync(stopTimeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Connections still open after the grace period are cut.
        }

        await _app.DisposeAsync().ConfigureAwait(false);
        _shutdown.Dispose();
    }
}
