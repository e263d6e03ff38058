using AotEvents.Pipeline;

namespace AotEvents.Http.Sse;

/// <summary>
/// Wakes every waiting subscriber once a second so each can send its keepalive and notice a client
/// that left, with one timer for the whole daemon instead of one per subscriber.
/// </summary>
public sealed class StreamHeartbeat : IDisposable
{
    private readonly Timer _timer;

    public StreamHeartbeat(RingBuffer ring, TimeSpan period) =>
        _timer = new Timer(static state => ((RingBuffer)state!).WakeAll(), ring, period, period);

    public void Dispose() => _timer.Dispose();
}
