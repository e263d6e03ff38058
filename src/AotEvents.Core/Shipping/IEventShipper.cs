namespace AotEvents.Shipping;

/// <summary>
/// What the HTTP layer needs from the S2 shipper (SPEC §3 <c>ack=s2</c>, §6, §8 metrics), so the
/// daemon's handlers do not depend on the S2 client.
/// </summary>
public interface IEventShipper
{
    /// <summary>Highest seq S2 has acknowledged (every seq up to it is stored in S2).</summary>
    long AckedSeq { get; }

    /// <summary>Completes when S2 acknowledged <paramref name="seq"/>.</summary>
    Task WaitAckedAsync(long seq, CancellationToken cancellationToken);

    /// <summary>Records appended to S2 (including retried ones).</summary>
    long Shipped { get; }

    /// <summary>Records acknowledged by S2.</summary>
    long Acked { get; }

    long Retries { get; }

    /// <summary>Seconds between now and the ts of the oldest event not yet acknowledged (0 when caught up).</summary>
    double LagSeconds { get; }
}
