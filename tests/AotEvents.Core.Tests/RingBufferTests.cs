using AotEvents.Events;
using AotEvents.Pipeline;

namespace AotEvents.Core.Tests;

/// <summary>The in-memory ring and its readers: bounds, eviction, exact drop counts, resume.</summary>
public sealed class RingBufferTests
{
    private static readonly CaptureSession S = Files.Session();

    private static void PublishRange(RingBuffer ring, long from, long to, int dataBytes = 0)
    {
        for (long s = from; s <= to; s++) ring.Publish(Files.Envelope(s, S, dataBytes: dataBytes));
    }

    private static List<long> Drain(RingReader reader, List<long>? dropped = null)
    {
        var seqs = new List<long>();
        while (reader.TryRead(out RingReadResult r))
        {
            if (r.IsDropped)
            {
                Assert.NotNull(dropped);
                dropped!.Add(r.Dropped);
                Assert.True(r.Envelope.IsEmpty);
            }
            else
            {
                seqs.Add(r.Envelope.Seq);
            }
        }
        return seqs;
    }

    [Fact]
    public void Empty_ring_reads_nothing()
    {
        var ring = new RingBuffer(8, 1 << 20);
        Assert.Equal(0, ring.LastSeq);
        Assert.Equal(1, ring.OldestSeq);
        Assert.Equal(0, ring.Count);
        Assert.Equal(0, ring.TryGet(1, out _));
        Assert.False(new RingReader(ring, 0).TryRead(out _));
    }

    [Fact]
    public void Reader_sees_every_envelope_in_order()
    {
        var ring = new RingBuffer(16, 1 << 20);
        PublishRange(ring, 1, 10);
        var reader = new RingReader(ring, 0);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), Drain(reader));
        Assert.Equal(10, reader.Position);
        PublishRange(ring, 11, 12);
        Assert.Equal([11L, 12L], Drain(reader));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(41)]
    [InlineData(99)]
    [InlineData(100)]
    public void Resume_after_N_starts_at_N_plus_1(long n)
    {
        var ring = new RingBuffer(128, 1 << 20);
        PublishRange(ring, 1, 100);
        var reader = new RingReader(ring, n);
        List<long> seqs = Drain(reader);
        Assert.Equal(Enumerable.Range((int)n + 1, 100 - (int)n).Select(i => (long)i), seqs);
    }

    [Fact]
    public void Resume_through_the_pipeline_ring_starts_at_N_plus_1()
    {
        using var h = new Harness();
        for (int i = 0; i < 30; i++) h.PublishOk("{\"type\":\"x\"}");
        var reader = new RingReader(h.Pipeline.Ring, 17);
        Assert.True(reader.TryRead(out RingReadResult r));
        Assert.Equal(18, r.Envelope.Seq);
        Assert.Equal(18, Files.Seq(Text.Str(r.Envelope.Json)));
    }

    [Fact]
    public void Capacity_overrun_reports_the_exact_dropped_count_then_continues_at_the_oldest()
    {
        var ring = new RingBuffer(16, 1 << 30);
        PublishRange(ring, 1, 10);
        var reader = new RingReader(ring, 0);
        for (int i = 1; i <= 3; i++)
        {
            Assert.True(reader.TryRead(out RingReadResult r));
            Assert.Equal(i, r.Envelope.Seq);
        }
        PublishRange(ring, 11, 50); // ring now holds 35..50
        Assert.Equal(35, ring.OldestSeq);
        Assert.Equal(16, ring.Count);

        Assert.True(reader.TryRead(out RingReadResult dropped));
        Assert.True(dropped.IsDropped);
        Assert.Equal(31, dropped.Dropped); // 4..34
        Assert.Equal(34, reader.Position);
        Assert.Equal(Enumerable.Range(35, 16).Select(i => (long)i), Drain(reader));
    }

    [Fact]
    public void Reader_resuming_before_the_oldest_gets_one_missed_result()
    {
        var ring = new RingBuffer(10, 1 << 30);
        PublishRange(ring, 1, 1000);
        var dropped = new List<long>();
        List<long> seqs = Drain(new RingReader(ring, 500), dropped);
        Assert.Equal([490L], dropped); // 501..990
        Assert.Equal(Enumerable.Range(991, 10).Select(i => (long)i), seqs);
        Assert.Equal(-1, ring.Read(500, new Envelope[4]));
    }

    [Fact]
    public void Ring_reset_after_recovery_reports_what_is_only_on_disk_as_missed()
    {
        var ring = new RingBuffer(10, 1 << 20);
        ring.Reset(100);
        Assert.Equal(100, ring.LastSeq);
        Assert.Equal(101, ring.OldestSeq);
        var dropped = new List<long>();
        Assert.Empty(Drain(new RingReader(ring, 0), dropped));
        Assert.Equal([100L], dropped);
        ring.Publish(Files.Envelope(101, S));
        Assert.Equal([101L], Drain(new RingReader(ring, 100)));
    }

    [Fact]
    public void Byte_budget_evicts_the_oldest()
    {
        int lineBytes = Files.Envelope(1, S, dataBytes: 100).Line.Length;
        var ring = new RingBuffer(1000, lineBytes * 3L);
        PublishRange(ring, 1, 5, dataBytes: 100);
        Assert.Equal(3, ring.OldestSeq);
        Assert.Equal(5, ring.LastSeq);
        Assert.Equal(3, ring.Count);
        Assert.Equal(lineBytes * 3L, ring.Bytes);
        Assert.Equal(-1, ring.TryGet(2, out _));
        Assert.Equal(1, ring.TryGet(3, out Envelope e));
        Assert.Equal(3, e.Seq);

        // One big envelope pushes out as many small ones as needed.
        ring.Publish(Files.Envelope(6, S, dataBytes: 100 + 2 * lineBytes)); // exactly the budget
        Assert.Equal(6, ring.OldestSeq);
        Assert.Equal(lineBytes * 3L, ring.Bytes);

        var dropped = new List<long>();
        Assert.Equal([6L], Drain(new RingReader(ring, 0), dropped));
        Assert.Equal([5L], dropped);
    }

    [Fact]
    public void Envelope_bigger_than_the_whole_budget_is_still_held_alone()
    {
        var ring = new RingBuffer(8, 10);
        PublishRange(ring, 1, 3);
        Assert.Equal(3, ring.OldestSeq);
        Assert.Equal(1, ring.Count);
    }

    [Fact]
    public void Read_copies_a_batch_in_order()
    {
        var ring = new RingBuffer(64, 1 << 20);
        PublishRange(ring, 1, 20);
        var into = new Envelope[8];
        Assert.Equal(8, ring.Read(4, into));
        Assert.Equal(Enumerable.Range(5, 8).Select(i => (long)i), into.Select(e => e.Seq));
        Assert.Equal(3, ring.Read(17, into));
        Assert.Equal(0, ring.Read(20, into));
    }

    [Fact]
    public async Task WaitAsync_completes_when_the_next_envelope_arrives()
    {
        var ring = new RingBuffer(8, 1 << 20);
        var reader = new RingReader(ring, 0);
        Task wait = reader.WaitAsync();
        Assert.False(wait.IsCompleted);
        ring.Publish(Files.Envelope(1, S));
        await wait.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(reader.TryRead(out RingReadResult r));
        Assert.Equal(1, r.Envelope.Seq);
        Assert.False(reader.WaitAsync().IsCompleted);
        ring.WakeAll();
    }

    [Fact]
    public void Slot_array_starts_small_and_doubles_up_to_the_capacity_without_losing_envelopes()
    {
        var ring = new RingBuffer(8192, 1 << 30);
        Assert.Equal(8192, ring.Capacity);
        Assert.Equal(RingBuffer.InitialSlots, ring.AllocatedSlots);

        var reader = new RingReader(ring, 0);
        PublishRange(ring, 1, RingBuffer.InitialSlots + 1);
        Assert.Equal(RingBuffer.InitialSlots * 2, ring.AllocatedSlots);
        Assert.Equal(1, ring.OldestSeq); // growing evicts nothing
        Assert.Equal(Enumerable.Range(1, RingBuffer.InitialSlots + 1).Select(i => (long)i), Drain(reader));

        PublishRange(ring, RingBuffer.InitialSlots + 2, 10_000);
        Assert.Equal(8192, ring.AllocatedSlots);
        Assert.Equal(8192, ring.Count);
        Assert.Equal(10_000 - 8192 + 1, ring.OldestSeq);
        var dropped = new List<long>();
        Assert.Equal(Enumerable.Range(10_000 - 8192 + 1, 8192).Select(i => (long)i), Drain(reader, dropped));
        Assert.Equal([10_000L - 8192 - RingBuffer.InitialSlots - 1], dropped);
    }

    [Fact]
    public void A_full_byte_budget_evicts_instead_of_growing()
    {
        var ring = new RingBuffer(8192, 1 << 30);
        PublishRange(ring, 1, RingBuffer.InitialSlots);
        long budget = ring.Bytes; // exactly the envelopes held now
        var tight = new RingBuffer(8192, budget);
        PublishRange(tight, 1, RingBuffer.InitialSlots + 10);
        Assert.Equal(RingBuffer.InitialSlots, tight.AllocatedSlots);
        Assert.True(tight.OldestSeq > 10, $"oldest {tight.OldestSeq}"); // at least the 10 extra were evicted
        Assert.True(tight.Bytes <= budget);
    }

    /// <summary>Reads seqs 1..total from the ring as one reader; every envelope must be exactly the one published.</summary>
    private static async Task<(long Read, long Dropped)> ReadAllAsync(RingBuffer ring, Envelope[] envelopes, int total)
    {
        var reader = new RingReader(ring, 0);
        long read = 0, dropped = 0;
        while (reader.Position < total)
        {
            if (!reader.TryRead(out RingReadResult r))
            {
                await reader.WaitAsync();
                continue;
            }
            if (r.IsDropped)
            {
                dropped += r.Dropped;
                continue;
            }
            // The envelope copied out of the slot is the one published with that seq, bytes and all.
            Assert.Same(envelopes[r.Envelope.Seq].Line, r.Envelope.Line);
            Assert.Equal(reader.Position, r.Envelope.Seq);
            read++;
        }
        return (read, dropped);
    }

    [Fact]
    public async Task Concurrent_readers_never_see_a_torn_or_misplaced_envelope_while_the_ring_grows_and_wraps()
    {
        const int total = 100_000;
        var ring = new RingBuffer(RingBuffer.InitialSlots * 16, 1 << 30);
        var envelopes = new Envelope[total + 1];
        for (int s = 1; s <= total; s++) envelopes[s] = Files.Envelope(s, S);

        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() => ReadAllAsync(ring, envelopes, total))).ToArray();
        await Task.Run(() =>
        {
            for (int s = 1; s <= total; s++)
            {
                ring.Publish(in envelopes[s]);
                if (s % 64 == 0) Thread.Yield(); // let the readers interleave with the growth steps
            }
        });
        foreach (var (read, dropped) in await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(30)))
            Assert.Equal(total, read + dropped);
        Assert.Equal(RingBuffer.InitialSlots * 16, ring.AllocatedSlots);
    }

    [Fact]
    public async Task Concurrent_readers_never_see_a_torn_or_misplaced_envelope_while_the_ring_wraps()
    {
        const int total = 200_000;
        var ring = new RingBuffer(64, 1 << 30);
        var envelopes = new Envelope[total + 1];
        for (int s = 1; s <= total; s++) envelopes[s] = Files.Envelope(s, S);

        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() => ReadAllAsync(ring, envelopes, total))).ToArray();
        await Task.Run(() =>
        {
            for (int s = 1; s <= total; s++) ring.Publish(in envelopes[s]);
        });
        foreach (var (read, dropped) in await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(30)))
            Assert.Equal(total, read + dropped);
    }
}
