using System.Diagnostics;
using AotEvents.S2.Shipping;
using S2StandIn;

namespace AotEvents.S2.Tests;

/// <summary>
/// <see cref="S2Shipper"/> against the in-process stand-in (SPEC §6): every event reaches S2 exactly
/// once, in seq order, byte for byte, whatever S2 does to the appends.
/// </summary>
public sealed class ShipperTests
{
    private static readonly TimeSpan Flush = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Ships_every_event_once_in_order_into_one_stream_per_session()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        string first = rig.StartSession();
        rig.Publish(700);
        rig.StopSession();
        string second = rig.StartSession();
        rig.Publish(300);
        rig.StopSession();
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce();
        Assert.Equal(new[] { first, second }.Order(StringComparer.Ordinal), rig.S2.Streams(TestSupport.Basin));
        Assert.Equal(701, rig.S2.Records(TestSupport.Basin, first).Count); // 700 + session_ended
        Assert.Equal(301, rig.S2.Records(TestSupport.Basin, second).Count);
        Assert.Equal(1002, rig.Shipper.Acked);
        Assert.Equal(1002, rig.Shipper.Shipped);
        Assert.Equal(0, rig.Shipper.Retries);
        Assert.All(rig.S2.Requests.Where(r => r.Op == S2Op.Append), r => Assert.Equal("raw", r.Format));
    }

    [Fact]
    public async Task Lost_acks_do_not_store_a_batch_twice()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        rig.S2.Faults.LoseNextAcks(5);
        rig.StartSession();
        rig.Publish(1000);
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce();
        Assert.Equal(5, rig.S2.Requests.Count(r => r.Fault == S2FaultKind.DroppedAfterLanding));
        Assert.Equal(5, rig.Shipper.Retries);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Dropped_connections_before_or_after_landing_do_not_lose_or_duplicate(bool afterLanding)
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        rig.S2.Faults.DropNext(3, afterLanding);
        rig.S2.Faults.DropNext(2, afterLanding, S2Op.CheckTail | S2Op.Read);
        rig.StartSession();
        rig.Publish(600);
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce();
        Assert.Equal(0, rig.S2.Faults.PendingRules);
    }

    [Fact]
    public async Task An_append_that_lands_after_the_client_timed_out_is_not_repeated()
    {
        // The append lands, then the answer waits longer than the client's deadline.
        await using ShipperRig rig = await ShipperRig.StartAsync(requestTimeout: TimeSpan.FromMilliseconds(300));
        rig.S2.Faults.DelayNext(2, TimeSpan.FromMilliseconds(800), afterLanding: true);
        rig.StartSession();
        rig.Publish(300);
        await rig.WaitAllAckedAsync();
        await Task.Delay(1000); // let the delayed answers finish

        rig.AssertExactlyOnce();
    }

    [Fact]
    public async Task An_append_delayed_before_landing_cannot_land_after_its_retry()
    {
        // The slow append lands only after the shipper gave up on it and appended the same batch
        // again: match_seq_num makes the late one fail with 412.
        await using ShipperRig rig = await ShipperRig.StartAsync(requestTimeout: TimeSpan.FromMilliseconds(300));
        rig.S2.Faults.DelayNext(1, TimeSpan.FromMilliseconds(1000));
        rig.StartSession();
        rig.Publish(200);
        await rig.WaitAllAckedAsync();
        await Task.Delay(1200);

        rig.AssertExactlyOnce();
        Assert.Contains(rig.S2.Requests, r => r.Op == S2Op.Append && r.Fault == S2FaultKind.Delayed);
    }

    [Fact]
    public async Task A_412_from_a_foreign_append_resyncs_and_goes_on_at_the_new_tail()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        string session = rig.StartSession();
        rig.Publish(100);
        await rig.WaitAllAckedAsync();
        rig.S2.Append(TestSupport.Basin, session, "{\"foreign\":1}"); // someone else wrote to the stream
        rig.Publish(100);
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce(ignore: body => body.StartsWith("{\"foreign\"", StringComparison.Ordinal));
        Assert.Contains(rig.S2.Requests, r => r.Op == S2Op.Append && r.Status == 412);
        Assert.Equal(201, rig.S2.Records(TestSupport.Basin, session).Count);
    }

    [Fact]
    public async Task An_injected_412_without_a_tail_is_retried_after_a_resync()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        rig.S2.Faults.FailNext(2, 412, code: "append_condition_failed");
        rig.StartSession();
        rig.Publish(150);
        await rig.WaitAllAckedAsync();
        rig.AssertExactlyOnce();
    }

    [Fact]
    public async Task Rate_limiting_honours_retry_after_ms()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        string session = rig.StartSession();
        rig.Publish(10);
        await rig.WaitAllAckedAsync();
        rig.S2.ClearRequests();

        rig.S2.Faults.RateLimitNext(2, TimeSpan.FromMilliseconds(700));
        rig.Publish(10);
        await rig.WaitAllAckedAsync();

        S2StandInRequest[] requests = [.. rig.S2.Requests];
        S2StandInRequest[] limited = [.. requests.Where(r => r.Status == 429)];
        Assert.Equal(2, limited.Length);
        foreach (S2StandInRequest r in limited)
        {
            // Nothing is sent to S2 before retry-after-ms has passed (the backoff alone is ≤ 300 ms here).
            S2StandInRequest next = requests.First(n => n.At > r.At);
            Assert.True(next.At - r.At >= TimeSpan.FromMilliseconds(680), $"retried after {(next.At - r.At).TotalMilliseconds} ms");
        }
        Assert.Equal(2, rig.Shipper.Retries);
        rig.AssertExactlyOnce();
        Assert.Equal(20, rig.S2.Records(TestSupport.Basin, session).Count);
    }

    [Fact]
    public async Task Retries_back_off_exponentially_up_to_the_cap()
    {
        var options = new ShipperOptions
        {
            Linger = TimeSpan.FromMilliseconds(5),
            InitialBackoff = TimeSpan.FromMilliseconds(40),
            MaxBackoff = TimeSpan.FromMilliseconds(320),
        };
        await using ShipperRig rig = await ShipperRig.StartAsync(options);
        rig.StartSession();
        rig.Publish(1);
        await rig.WaitAllAckedAsync();
        rig.S2.ClearRequests();

        const int failures = 7;
        rig.S2.Faults.FailNext(failures, 503);
        var clock = Stopwatch.StartNew();
        rig.Publish(1);
        await rig.WaitAllAckedAsync();
        clock.Stop();

        S2StandInRequest[] appends = [.. rig.S2.Requests.Where(r => r.Op == S2Op.Append)];
        Assert.Equal(failures + 1, appends.Length);
        Assert.Equal(failures, rig.Shipper.Retries);
        // Full jitter: the wait before retry k is uniform in (0, min(cap, 40 ms · 2^k)]. Each gap stays
        // under its ceiling (plus the re-sync and scheduling), and the waits are not all tiny.
        double total = 0;
        for (int k = 0; k < failures; k++)
        {
            double ceiling = Math.Min(320, 40 * Math.Pow(2, k));
            double gap = (appends[k + 1].At - appends[k].At).TotalMilliseconds;
            Assert.True(gap <= ceiling + 1000, $"retry {k}: waited {gap} ms, ceiling {ceiling} ms"); // slack: 2-core thread-pool stalls
            total += gap;
        }
        Assert.True(total >= 100, $"7 retries took only {total} ms: no backoff?");
        rig.AssertExactlyOnce();
    }

    [Fact]
    public async Task A_non_retryable_answer_keeps_retrying_slowly_and_never_drops_the_batch()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        rig.S2.Faults.FailNext(2, 403, code: "permission_denied");
        rig.StartSession();
        rig.Publish(20);
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce();
        Assert.Equal(2, rig.Shipper.Retries);
    }

    [Fact]
    public async Task A_missing_stream_is_created_and_a_deleted_one_recreated()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        string session = rig.StartSession();
        rig.Publish(10);
        await rig.WaitAllAckedAsync();
        Assert.True(rig.S2.StreamExists(TestSupport.Basin, session));
        Assert.Contains(rig.S2.Requests, r => r.Op == S2Op.CreateStream && r.Status == 201);
        Assert.Contains("created S2 stream " + session, rig.Log, StringComparison.Ordinal);

        rig.S2.DeleteStream(TestSupport.Basin, session);
        rig.Publish(10);
        await rig.WaitAllAckedAsync();
        Assert.Equal(10, rig.S2.Records(TestSupport.Basin, session).Count);
    }

    [Fact]
    public async Task Falling_far_behind_a_tiny_ring_catches_up_from_the_jsonl_files()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync(ShipperRig.FastOptions(maxRecords: 100), ringCapacity: 16);
        rig.StartSession();
        rig.Publish(200);
        await rig.WaitAllAckedAsync();

        rig.S2.Faults.GoDown();
        rig.Publish(5000);
        await Task.Delay(300);
        Assert.True(rig.Shipper.AckedSeq < rig.Pipeline.Ring.OldestSeq - 1000, "the shipper should be far behind the ring");
        rig.S2.Faults.ComeBackUp();
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce();
        Assert.True(rig.Shipper.FileReads > 0, "the catch-up should have read the files");
        Assert.All(rig.S2.Requests.Where(r => r.Op == S2Op.Append && r.Status == 200), r => Assert.Equal(200, r.Status));
    }

    [Fact]
    public async Task Catch_up_from_files_works_with_several_sessions_and_a_fixed_stream()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync(ShipperRig.FastOptions(fixedStream: "all-events", maxRecords: 64), ringCapacity: 16);
        rig.S2.Faults.GoDown();
        for (int s = 0; s < 3; s++)
        {
            rig.StartSession();
            rig.Publish(700);
            rig.StopSession();
        }
        await Task.Delay(200);
        rig.S2.Faults.ComeBackUp();
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce();
        Assert.Equal(["all-events"], rig.S2.Streams(TestSupport.Basin));
    }

    [Fact]
    public async Task The_position_survives_a_restart()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        rig.StartSession();
        long last = rig.Publish(300);
        await rig.WaitAllAckedAsync();
        await rig.CloseAsync(Flush);
        Assert.Equal("300", File.ReadAllText(Path.Combine(rig.DataDir, "s2-position")));

        rig.S2.ClearRequests();
        rig.Open(start: false);
        Assert.Equal(last, rig.Shipper.AckedSeq);
        rig.Shipper.Start();
        rig.Publish(200);
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce();
        Assert.Equal(200, rig.Shipper.Acked);
    }

    [Fact]
    public async Task Events_left_unshipped_at_shutdown_ship_after_the_next_start()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        rig.StartSession();
        rig.Publish(100);
        await rig.WaitAllAckedAsync();
        rig.S2.Faults.GoDown();
        rig.Publish(400);

        var clock = Stopwatch.StartNew();
        await rig.CloseAsync(TimeSpan.FromMilliseconds(500));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"StopAsync took {clock.Elapsed}");
        Assert.Equal("100", File.ReadAllText(Path.Combine(rig.DataDir, "s2-position")));

        rig.S2.Faults.ComeBackUp();
        rig.Open();
        await rig.WaitAllAckedAsync();
        rig.AssertExactlyOnce();
    }

    [Fact]
    public async Task Shutdown_flushes_what_was_published()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync(ShipperRig.FastOptions(lingerMs: 2000));
        rig.StartSession();
        long last = rig.Publish(120);
        await rig.CloseAsync(Flush); // a 2 s linger must not hold the flush back
        Assert.Equal(last, rig.Shipper.AckedSeq);
        rig.AssertExactlyOnce();
    }

    [Fact]
    public async Task A_lost_position_file_does_not_duplicate_anything()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        await LosePositionFileAfterTwoSessionsAsync(rig, eventsPerSession: 400);
    }

    [Fact]
    public async Task A_lost_position_file_does_not_duplicate_anything_in_a_fixed_stream_across_sessions()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync(ShipperRig.FastOptions(fixedStream: "fixed"));
        await LosePositionFileAfterTwoSessionsAsync(rig, eventsPerSession: 300);
    }

    /// <summary>Ships two sessions, deletes the position file, reopens and publishes more: nothing may be shipped twice.</summary>
    private static async Task LosePositionFileAfterTwoSessionsAsync(ShipperRig rig, int eventsPerSession)
    {
        rig.StartSession();
        rig.Publish(eventsPerSession);
        rig.StopSession();
        rig.StartSession();
        rig.Publish(eventsPerSession);
        await rig.WaitAllAckedAsync();
        await rig.CloseAsync(Flush);

        File.Delete(Path.Combine(rig.DataDir, "s2-position"));
        rig.Open();
        rig.Publish(50);
        await rig.WaitAllAckedAsync();
        rig.AssertExactlyOnce();
    }

    [Fact]
    public async Task A_lost_ack_of_a_batch_spanning_two_sessions_in_a_fixed_stream_is_not_repeated()
    {
        // One batch holds the end of session A and the start of session B; its ack is lost.
        await using ShipperRig rig = await ShipperRig.StartAsync(ShipperRig.FastOptions(fixedStream: "fixed", maxRecords: 1000, lingerMs: 300));
        rig.StartSession();
        rig.Publish(10);
        await rig.WaitAllAckedAsync();
        rig.S2.Faults.LoseNextAcks(1);
        rig.Publish(10);
        rig.StopSession();
        rig.StartSession();
        rig.Publish(10);
        await rig.WaitAllAckedAsync();

        rig.AssertExactlyOnce();
        Assert.Equal(1, rig.S2.Requests.Count(r => r.Fault == S2FaultKind.DroppedAfterLanding));
    }

    [Fact]
    public async Task Ack_waiters_complete_only_once_S2_has_the_record()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        string session = rig.StartSession();
        rig.S2.Faults.GoDown();
        long seq = rig.Publish(1);
        Task acked = rig.Shipper.WaitAckedAsync(seq, CancellationToken.None);
        await Task.Delay(300);
        Assert.False(acked.IsCompleted);
        rig.S2.Faults.ComeBackUp();
        await acked.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Single(rig.S2.Records(TestSupport.Basin, session));
    }

    [Fact]
    public async Task Events_are_shipped_only_once_they_are_written_to_the_files()
    {
        // A crash loses what the writer has not written yet; S2 must not hold events the files lost,
        // or the seqs handed out again after the restart would be skipped as "already shipped".
        await using ShipperRig rig = await ShipperRig.StartAsync();
        rig.StartSession();
        for (int i = 0; i < 20; i++)
        {
            rig.Publish(50);
            long written = rig.Pipeline.Writer.WrittenSeq;
            Assert.True(rig.Shipper.AckedSeq <= written, $"acked {rig.Shipper.AckedSeq} > written {written}");
            await Task.Delay(5);
        }
        await rig.WaitAllAckedAsync();
        rig.AssertExactlyOnce();
    }

    [Fact]
    public async Task The_shipper_registers_its_position_with_retention()
    {
        await using ShipperRig rig = await ShipperRig.StartAsync();
        rig.StartSession();
        rig.Publish(5);
        await rig.WaitAllAckedAsync();
        Assert.NotNull(rig.Pipeline.Writer.ShippedSeq);
        Assert.Equal(5, rig.Pipeline.Writer.ShippedSeq!());
    }
}
