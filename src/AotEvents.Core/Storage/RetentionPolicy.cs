namespace AotEvents.Storage;

/// <summary>A rotated segment as retention sees it.</summary>
public readonly record struct RetentionCandidate(long FirstSeq, long LastSeq, long Bytes);

/// <summary>What <see cref="RetentionPolicy.Select"/> decided.</summary>
public readonly record struct RetentionPlan(
    List<int> Delete, long BytesAfter, int KeptUnshipped, long UnshippedBytes);

/// <summary>
/// The disk cap of SPEC §5 (<c>EVENTS_MAX_DISK_BYTES</c>): while the JSONL files take more than the
/// cap, delete rotated segments oldest first (by first seq, across categories). The active
/// <c>&lt;category&gt;.log</c> files are never candidates. When S2 shipping is configured, a segment
/// holding a seq S2 has not acknowledged (last seq &gt; shipped seq) is kept, whatever the cap says:
/// shipping never loses an event, so the disk goes over the cap until S2 catches up (and the writer
/// logs that once). Newer segments that are fully shipped may still go in that case.
/// </summary>
public static class RetentionPolicy
{
    /// <param name="oldestFirst">Rotated segments sorted by first seq.</param>
    /// <param name="totalBytes">Size of every JSONL file, active ones included.</param>
    /// <param name="maxBytes">The cap.</param>
    /// <param name="shippedSeq">Highest seq S2 acknowledged; null when S2 is not configured.</param>
    /// <returns>Indexes into <paramref name="oldestFirst"/> to delete, in order.</returns>
    public static RetentionPlan Select(IReadOnlyList<RetentionCandidate> oldestFirst, long totalBytes, long maxBytes,
        long? shippedSeq)
    {
        var delete = new List<int>();
        int keptUnshipped = 0;
        long unshippedBytes = 0;
        for (int i = 0; i < oldestFirst.Count && totalBytes > maxBytes; i++)
        {
            RetentionCandidate c = oldestFirst[i];
            if (shippedSeq is long shipped && c.LastSeq > shipped)
            {
                keptUnshipped++;
                unshippedBytes += c.Bytes;
                continue;
            }
            delete.Add(i);
            totalBytes -= c.Bytes;
        }
        return new RetentionPlan(delete, totalBytes, keptUnshipped, unshippedBytes);
    }
}
