using AotEvents.Archive;
using AotEvents.Events;

namespace AotEvents.S2.Shipping;

/// <summary>
/// <c>GET /telemetry/events</c> over S2 (SPEC §7): offset = S2 seq_num, since/until = S2 record
/// timestamps (milliseconds), categories filtered here (S2 does not know them). Pages are read in
/// bounded S2 reads, so a page with a narrow category filter costs a few reads, never the stream.
/// </summary>
public sealed class S2ArchiveReader(S2Client client, string? fixedStream, Func<string?> defaultSession) : IArchiveReader
{
    /// <summary>Most S2 reads one page may take (each up to 1000 records).</summary>
    private const int MaxReadsPerPage = 20;

    public async Task<ArchivePage> ReadAsync(ArchiveQuery query, CancellationToken cancellationToken)
    {
        var page = new ArchivePage();
        string? stream = fixedStream ?? query.CaptureSessionId ?? defaultSession();
        if (stream is null) return page;

        S2ReadStart start = query.Offset is long offset ? S2ReadStart.AtSeqNum(offset)
            : query.SinceMicros is long since ? S2ReadStart.AtTimestamp(since / 1000)
            : S2ReadStart.AtSeqNum(0);
        long? untilMs = query.UntilMicros is long until ? until / 1000 : null;
        bool filterSession = fixedStream is not null && query.CaptureSessionId is not null;
        // Unfiltered, a page needs limit records and one more to know whether there is more: do not
        // read (and pay egress for) 1000 records to answer limit=7.
        bool filtered = filterSession || query.CategoryMask != EventVocabulary.AllCategoriesMask;
        int count = filtered ? S2Limits.MaxReadRecords : Math.Clamp(query.Limit + 1, 1, S2Limits.MaxReadRecords);
        try
        {
            for (int reads = 0; reads < MaxReadsPerPage; reads++)
            {
                S2ReadBatch batch = await client.ReadAsync(stream, start, count: count, until: untilMs, clamp: true,
                    cancellationToken: cancellationToken).ConfigureAwait(false);
                if (batch.Records.Count == 0) return page; // reached the tail (or until)
                foreach (S2Record record in batch.Records)
                {
                    if (page.Envelopes.Count == query.Limit)
                    {
                        page.HasMore = true;
                        page.NextOffset = record.SeqNum;
                        return page;
                    }
                    if (Matches(record.Body.Span, query.CategoryMask) &&
                        (!filterSession || S2Shipper.ReadSessionId(record.Body.Span) == query.CaptureSessionId))
                        page.Envelopes.Add(record.Body);
                }
                long next = batch.Records[^1].SeqNum + 1;
                start = S2ReadStart.AtSeqNum(next);
                if (batch.Tail is { } tail && next >= tail.SeqNum) return page;
            }
            // The page is not full but the read budget is spent: let the caller continue from here.
            page.HasMore = true;
            page.NextOffset = start.Value;
            return page;
        }
        catch (S2Exception e) when (e.IsStreamNotFound)
        {
            return page;
        }
        catch (S2Exception e) when (e.IsRangeNotSatisfiable)
        {
            return page; // offset beyond the tail: nothing (more) to read
        }
        catch (S2Exception e)
        {
            throw new ArchiveUnavailableException(e.Message, e);
        }
    }

    private static bool Matches(ReadOnlySpan<byte> envelope, int categoryMask)
    {
        if (categoryMask == EventVocabulary.AllCategoriesMask) return true;
        int i = envelope.IndexOf("\"category\":\""u8);
        if (i < 0) return false;
        ReadOnlySpan<byte> rest = envelope[(i + 12)..];
        int end = rest.IndexOf((byte)'"');
        return end > 0 && EventVocabulary.TryParseCategory(rest[..end], out EventCategory c) &&
               (categoryMask & (1 << (int)c)) != 0;
    }
}
