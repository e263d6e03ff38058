using AotEvents.S2.Shipping;

namespace AotEvents.S2.Tests;

[CollectionDefinition(nameof(ShipperMemoryTests), DisableParallelization = true)]
public sealed class ShipperMemoryCollection;

/// <summary>
/// SPEC §6 "memory stays bounded": while S2 is down the shipper holds one batch (and a bounded
/// read-ahead of file lines), however much is published. Runs alone so the heap numbers are its own.
/// </summary>
[Collection(nameof(ShipperMemoryTests))]
public sealed class ShipperMemoryTests
{
    [Fact]
    public async Task While_S2_is_down_the_shipper_holds_at_most_one_batch()
    {
        const int maxRecords = 50;
        await using ShipperRig rig = await ShipperRig.StartAsync(ShipperRig.FastOptions(maxRecords: maxRecords), ringCapacity: 16);
        rig.StartSession();
        rig.Publish(100);
        await rig.WaitAllAckedAsync();

        rig.S2.Faults.GoDown();
        int maxHeld = 0;
        using var sampling = new CancellationTokenSource();
        Task sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                maxHeld = Math.Max(maxHeld, rig.Shipper.HeldRecords);
                await Task.Delay(1);
            }
        });
        // Warm up first (buffer pools, the writer's queues), then compare the heap before and after
        // publishing another 32k events (~15 MB of envelopes) that S2 does not take.
        rig.Publish(4000, padBytes: 400);
        await WaitWrittenAsync(rig);
        long before = Heap();
        for (int i = 0; i < 16; i++)
        {
            rig.Publish(2000, padBytes: 400);
            await Task.Delay(20);
        }
        await WaitWrittenAsync(rig);
        await Task.Delay(300); // a few retries of the same batch
        long during = Heap();
        await sampling.CancelAsync();
        await sampler;

        // One batch, plus the read-ahead of file lines (≈ MaxBytes); the ring is 16 envelopes.
        Assert.InRange(maxHeld, 1, maxRecords + 1000);
        // Holding what S2 did not take would be ~15 MB; pools, the stand-in's request log and GC noise
        // stay well under half of that.
        Assert.True(during - before < 7 * 1024 * 1024, $"heap grew by {(during - before) / 1024} KiB while S2 was down");

        rig.S2.Faults.ComeBackUp();
        await rig.WaitAllAckedAsync(TimeSpan.FromSeconds(60));
        rig.AssertExactlyOnce();
    }

    [Fact]
    public async Task Large_envelopes_do_not_inflate_the_file_read_ahead()
    {
        // 200 KB envelopes: a read-ahead sized by count (256 lines) would hold 50 MB.
        await using ShipperRig rig = await ShipperRig.StartAsync(ShipperRig.FastOptions(maxRecords: 1000), ringCapacity: 16);
        rig.StartSession();
        rig.S2.Faults.GoDown();
        rig.Publish(120, padBytes: 200_000, batch: 20);
        await WaitWrittenAsync(rig);
        rig.S2.Faults.ComeBackUp();
        int maxHeld = 0;
        while (rig.Shipper.AckedSeq < rig.Pipeline.LastSeq)
        {
            maxHeld = Math.Max(maxHeld, rig.Shipper.HeldRecords);
            await Task.Delay(1);
        }
        rig.AssertExactlyOnce();
        Assert.True(maxHeld <= 2 * 20, $"held {maxHeld} envelopes of 200 KB");
        Assert.All(rig.S2.Requests.Where(r => r.Op == S2StandIn.S2Op.Append), r => Assert.NotEqual(413, r.Status));
    }

    private static async Task WaitWrittenAsync(ShipperRig rig)
    {
        for (int i = 0; i < 500 && rig.Pipeline.Writer.WrittenSeq < rig.Pipeline.LastSeq; i++) await Task.Delay(10);
    }

    /// <summary>Live heap bytes after a compacting full collection (fragmentation left by a
    /// non-compacting GC would otherwise count as growth).</summary>
    private static long Heap()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetGCMemoryInfo(GCKind.FullBlocking).HeapSizeBytes - GC.GetGCMemoryInfo(GCKind.FullBlocking).FragmentedBytes;
    }
}
