namespace AotEvents.Diagnostics;

/// <summary>
/// Keeps the managed heap near what the daemon actually holds. Envelopes live in the ring and the
/// JSONL queue long enough to be promoted, so under a publish burst the GC's gen2 fills with dead
/// envelopes and, left to its own budget, only collects it when RSS is several times the live data.
/// Ten times a second this compares the heap with the live estimate (ring + JSONL queue + a fixed
/// allowance) and, when the heap is more than a quarter over that, runs one full blocking collection. On an
/// idle or steady daemon it never fires; under a burst it costs a few milliseconds a second, and it
/// keeps the browser's memory for the browser.
/// </summary>
public sealed class HeapBudget : IDisposable
{
    /// <summary>Headroom for buffers, pools and code-side data that the live estimate does not count.</summary>
    public const long AllowanceBytes = 4 * 1024 * 1024;

    private readonly Func<long> _liveBytes;
    private readonly Timer _timer;

    public HeapBudget(Func<long> liveBytes, TimeSpan period)
    {
        _liveBytes = liveBytes;
        _timer = new Timer(static s => ((HeapBudget)s!).Check(), this, period, period);
    }

    /// <summary>Full collections this budget asked for.</summary>
    public long Collections { get; private set; }

    public void Check()
    {
        long target = _liveBytes() + AllowanceBytes;
        if (GC.GetTotalMemory(forceFullCollection: false) <= target + target / 4) return;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        Collections++;
    }

    public void Dispose() => _timer.Dispose();
}
