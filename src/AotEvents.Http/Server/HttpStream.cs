namespace AotEvents.Http.Server;

/// <summary>
/// The body of a streaming answer (e.g. Server-Sent Events), after <see cref="HttpResponse.StartStreamingAsync"/>.
/// One writer at a time (don't call <see cref="WriteAsync"/> concurrently).
/// </summary>
public sealed class HttpStream
{
    private readonly HttpConnection _connection;
    private readonly CancellationTokenSource _aborted = new();
    private readonly CancellationToken _shutdownToken;
    private CancellationTokenRegistration _shutdownRegistration;
    private volatile bool _clientGone;
    private volatile bool _completed;

    internal HttpStream(HttpConnection connection, CancellationToken shutdownToken)
    {
        _connection = connection;
        _shutdownToken = shutdownToken;
        _shutdownRegistration = shutdownToken.UnsafeRegister(static s => ((HttpStream)s!).Cancel(), this);
    }

    /// <summary>
    /// Cancelled when the client disconnects (FIN or RST, seen by a receive kept pending on the connection), when a send
    /// fails or times out, or when server shutdown starts (<see cref="HttpServer.ShutdownToken"/>). After a shutdown
    /// cancellation writes still work, so the handler can write its last events before returning.
    /// </summary>
    public CancellationToken Aborted => _aborted.Token;

    /// <summary>False once the client is known to be gone (writes then return false / throw).</summary>
    public bool IsClientConnected => !_clientGone && !_completed;

    /// <summary>True when the stream ends because the server is shutting down (not because the client left).</summary>
    public bool IsShuttingDown => _shutdownToken.IsCancellationRequested;

    /// <summary>
    /// Sends <paramref name="data"/> in one send. Returns false (never throws) when the client is gone, the send failed
    /// or it did not complete within <see cref="HttpServerOptions.SendTimeout"/>; <see cref="Aborted"/> is then cancelled.
    /// </summary>
    public ValueTask<bool> TryWriteAsync(ReadOnlyMemory<byte> data)
    {
        if (_clientGone || _completed)
        {
            return new ValueTask<bool>(false);
        }
        return data.IsEmpty ? new ValueTask<bool>(true) : _connection.StreamSendAsync(this, data);
    }

    /// <summary>
    /// Sends <paramref name="data"/> in one send.
    /// </summary>
    /// <exception cref="IOException">The client is gone, the send failed or timed out (see <see cref="TryWriteAsync"/>).</exception>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data)
    {
        ValueTask<bool> pending = TryWriteAsync(data);
        if (pending.IsCompletedSuccessfully)
        {
            return pending.Result ? default : ValueTask.FromException(ClientGone());
        }
        return AwaitWrite(pending);

        static async ValueTask AwaitWrite(ValueTask<bool> pending)
        {
            if (!await pending.ConfigureAwait(false))
            {
                throw ClientGone();
            }
        }
    }

    private static IOException ClientGone() => new("The client of the stream is gone.");

    internal void MarkClientGone()
    {
        _clientGone = true;
        Cancel();
    }

    /// <summary>The handler has returned: later writes fail, the shutdown registration is dropped.</summary>
    internal void Complete()
    {
        _completed = true;
        _shutdownRegistration.Dispose();
        Cancel();
    }

    private void Cancel()
    {
        try
        {
            _aborted.Cancel();
        }
        catch (AggregateException ex)
        {
            _connection.LogMessage("a callback registered on HttpStream.Aborted threw: " + ex.InnerException?.Message);
        }
    }
}
