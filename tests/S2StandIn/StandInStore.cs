using System.Collections.Concurrent;
using System.Text;

namespace S2StandIn;

/// <summary>A stored record as the stand-in holds it.</summary>
/// <param name="SeqNum">Sequence number assigned on append.</param>
/// <param name="Timestamp">Timestamp (ms since epoch unless the client supplied its own).</param>
/// <param name="Body">Body bytes (UTF-8 text for <c>raw</c> appends).</param>
/// <param name="Headers">Record headers as byte pairs.</param>
public sealed record S2StandInRecord(long SeqNum, long Timestamp, byte[] Body, IReadOnlyList<KeyValuePair<byte[], byte[]>> Headers)
{
    /// <summary>The body decoded as UTF-8.</summary>
    public string BodyText => Encoding.UTF8.GetString(Body);

    /// <summary>Metered size: 8 + 2 × headers + header bytes + body bytes.</summary>
    public int MeteredBytes
    {
        get
        {
            int size = 8 + Body.Length;
            foreach (KeyValuePair<byte[], byte[]> header in Headers)
            {
                size += 2 + header.Key.Length + header.Value.Length;
            }

            return size;
        }
    }
}

/// <summary>A stream position (tail or record position).</summary>
public readonly record struct S2StandInPosition(long SeqNum, long Timestamp);

/// <summary>One stream: records, tail, fencing token, config, and a signal for readers waiting at the tail.</summary>
internal sealed class StandInStream
{
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public StandInStream(string name, DateTimeOffset createdAt, byte[]? config)
    {
        Name = name;
        CreatedAt = createdAt;
        Config = config;
    }

    public string Name { get; }

    public DateTimeOffset CreatedAt { get; }

    /// <summary>The StreamConfig JSON given at creation (null → defaults).</summary>
    public byte[]? Config { get; set; }

    public string TimestampingMode { get; set; } = "client-prefer";

    public bool Uncapped { get; set; }

    public object Gate { get; } = new();

    public List<S2StandInRecord> Records { get; } = [];

    public long LastTimestamp { get; set; }

    public string FencingToken { get; set; } = string.Empty;

    public S2StandInPosition Tail => new(Records.Count, LastTimestamp);

    /// <summary>Completes when the next append lands (take it under <see cref="Gate"/>).</summary>
    public Task AppendedSignal => _appended.Task;

    /// <summary>Wakes waiting readers; call under <see cref="Gate"/> after an append.</summary>
    public void SignalAppended()
    {
        TaskCompletionSource done = _appended;
        _appended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.TrySetResult();
    }

    /// <summary>First sequence number whose timestamp is ≥ <paramref name="timestamp"/> (timestamps never decrease).</summary>
    public long SeqNumAtTimestamp(long timestamp)
    {
        int lo = 0, hi = Records.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (Records[mid].Timestamp < timestamp)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}

/// <summary>All basins and their streams. Basins come into being on first use.</summary>
internal sealed class StandInStore
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, StandInStream>> _basins = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, StandInStream> Basin(string basin)
        => _basins.GetOrAdd(basin, static _ => new ConcurrentDictionary<string, StandInStream>(StringComparer.Ordinal));

    public StandInStream? Find(string basin, string stream)
        => _basins.TryGetValue(basin, out var streams) && streams.TryGetValue(stream, out var s) ? s : null;

    /// <summary>Creates the stream; returns it and whether it was created now.</summary>
    public (StandInStream Stream, bool Created) GetOrCreate(string basin, string stream, DateTimeOffset now, byte[]? config)
    {
        var streams = Basin(basin);
        while (true)
        {
            if (streams.TryGetValue(stream, out StandInStream? existing))
            {
                return (existing, false);
            }

            var candidate = new StandInStream(stream, now, config);
            if (streams.TryAdd(stream, candidate))
            {
                return (candidate, true);
            }
        }
    }

    public bool Delete(string basin, string stream)
        => _basins.TryGetValue(basin, out var streams) && streams.TryRemove(stream, out _);
}
