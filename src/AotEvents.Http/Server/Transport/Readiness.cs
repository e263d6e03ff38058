using System.Threading.Tasks.Sources;

namespace AotEvents.Http.Server.Transport;

/// <summary>
/// One direction (read or write) of a <see cref="ConnectionSocket"/>: what the event loop has reported, what the
/// connection last found, and a reusable awaitable for waiting on the next report.
/// <para>
/// The loop only counts edge-triggered reports (<see cref="Signal"/>). The connection records the count it saw before
/// a syscall that came back empty (EAGAIN, or a short read: the kernel's queue was drained); while no report has come
/// since, another syscall is known to be wasted, so it waits instead. That is what makes a keep-alive request cost one
/// <c>recv</c>: the runtime's socket engine tries a read before every wait, which on an idle connection always fails.
/// </para>
/// <para>
/// Waiting is lock-free: the connection publishes "parked" and then re-checks the count, the loop bumps the count and
/// then claims "parked"; whichever side claims the parked flag decides, so a report is never lost between the two.
/// One waiter per direction at a time (the connection's own sequential flow).
/// </para>
/// </summary>
internal sealed class Readiness : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core; // continuations run inline on the loop thread
    private int _reports;
    private int _parked;
    private volatile bool _closed;

    // Owned by the connection's flow.
    private bool _drained;
    private int _reportsWhenDrained;

    /// <summary>Reports so far; read before a syscall, passed to <see cref="MarkDrained"/> if it found nothing.</summary>
    internal int Reports => Volatile.Read(ref _reports);

    /// <summary>True while the last syscall found the queue drained and no report has arrived since.</summary>
    internal bool KnownNotReady => _drained && !_closed && Volatile.Read(ref _reports) == _reportsWhenDrained;

    internal void MarkDrained(int reportsBeforeSyscall)
    {
        _drained = true;
        _reportsWhenDrained = reportsBeforeSyscall;
    }

    internal void MarkReady() => _drained = false;

    /// <summary>Loop thread: the kernel reported this direction ready (or hung up, or failed).</summary>
    internal void Signal()
    {
        Interlocked.Increment(ref _reports);
        if (Volatile.Read(ref _parked) == 1 && Interlocked.CompareExchange(ref _parked, 0, 1) == 1)
        {
            _core.SetResult(true);
        }
    }

    /// <summary>The socket is being closed: a parked waiter wakes (its next syscall fails), later waits return at once.</summary>
    internal void Close()
    {
        _closed = true;
        if (Interlocked.CompareExchange(ref _parked, 0, 1) == 1)
        {
            _core.SetResult(true);
        }
    }

    /// <summary>Completes after the next report (at once if one came after the drained syscall, or when closed).</summary>
    internal ValueTask WaitAsync()
    {
        _core.Reset();
        Interlocked.Exchange(ref _parked, 1); // a full fence: the re-check below cannot move before it
        if ((_closed || Volatile.Read(ref _reports) != _reportsWhenDrained) && Interlocked.CompareExchange(ref _parked, 0, 1) == 1)
        {
            return default; // un-parked ourselves: something is there already
        }
        return new ValueTask(this, _core.Version);
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
