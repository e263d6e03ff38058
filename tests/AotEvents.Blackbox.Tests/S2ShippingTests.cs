using System.Diagnostics;
using S2StandIn;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §6 with the published binary: every event reaches S2 exactly once, across sessions, restarts and kill -9.</summary>
public sealed class S2ShippingTests
{
    [Fact]
    public async Task Ten_thousand_events_over_two_sessions_land_once_in_seq_order_in_per_session_streams()
    {
        await using S2Rig rig = await S2Rig.StartAsync();
        string first = await rig.StartSessionAsync();
        await rig.PublishAsync(5000);
        await rig.StopSessionAsync();
        await rig.StopDaemonAsync();

        await rig.StartDaemonAsync();
        string second = await rig.StartSessionAsync();
        await rig.PublishAsync(5000);
        await rig.StopSessionAsync();
        await rig.WaitStoredAsync(10_002, TimeSpan.FromSeconds(30));

        rig.AssertExactlyOnce(10_002); // 10k events + two session_ended
        Assert.Equal(5001, rig.S2.Records(S2Rig.Basin, first).Count);
        Assert.Equal(5001, rig.S2.Records(S2Rig.Basin, second).Count);
        Assert.All(rig.S2.Requests.Where(r => r.Op == S2Op.Append), r =>
        {
            Assert.Equal("raw", r.Format);
            Assert.Equal(S2Rig.Basin, r.BasinHeader);
            Assert.Equal("Bearer " + S2Rig.Token, r.Authorization);
        });

        Dictionary<string, double> m = await rig.MetricsAsync();
        Assert.Equal(5001, m["aotevents_s2_acked_total"]); // this process shipped the second session
        Assert.Equal(5001, m["aotevents_s2_shipped_total"]);
        Assert.Equal(0, m["aotevents_s2_retries_total"]);
        Assert.Equal(0, m["aotevents_s2_lag_events"]);
        Assert.Equal(0, m["aotevents_s2_lag_seconds"]);
    }

    [Fact]
    public async Task Kill_9_mid_run_and_a_restart_on_the_same_data_dir_still_ship_every_event_once()
    {
        await using S2Rig rig = await S2Rig.StartAsync();
        await rig.StartSessionAsync();
        rig.S2.Faults.Latency = TimeSpan.FromMilliseconds(40); // ~100 batches: shipping takes seconds
        await rig.PublishAsync(5000);
        await Task.Delay(1000);
        // The append in flight when the daemon dies lands, but its ack never reaches anyone.
        rig.S2.Faults.DelayNext(1, TimeSpan.FromSeconds(2), afterLanding: true);
        await Task.Delay(300);
        int before = rig.StoredCount;
        Assert.InRange(before, 1, 5000 - 1);
        await rig.KillAndRestartAsync();
        rig.S2.Faults.Clear();

        await rig.PublishAsync(1000); // the session survived the crash
        await rig.StopSessionAsync();
        await rig.WaitStoredAsync(6001, TimeSpan.FromSeconds(30));
        // The append whose ack was lost with the daemon is logged by the stand-in once its delay ends.
        for (int i = 0; i < 100 && !rig.S2.Requests.Any(r => r.Fault == S2FaultKind.Delayed); i++) await Task.Delay(50);
        Assert.Contains(rig.S2.Requests, r => r.Fault == S2FaultKind.Delayed);
        rig.AssertExactlyOnce(6001);
    }

    [Fact]
    public async Task Sigterm_flushes_S2_before_exiting_0()
    {
        // A long linger and a slow S2: without the flush most events would still be waiting.
        await using S2Rig rig = await S2Rig.StartAsync(new Dictionary<string, string>
        {
            ["S2_BATCHER_LINGER"] = "5s",
            ["S2_SHUTDOWN_TIMEOUT"] = "10s",
        });
        await rig.StartSessionAsync();
        rig.S2.Faults.Latency = TimeSpan.FromMilliseconds(20);
        await rig.PublishAsync(3000);
        TimeSpan took = await rig.StopDaemonAsync();

        Assert.True(took < TimeSpan.FromSeconds(10), $"shutdown took {took}");
        rig.AssertExactlyOnce(3000);
    }

    [Fact]
    public async Task Sigterm_with_S2_down_exits_0_after_S2_SHUTDOWN_TIMEOUT_and_ships_the_rest_after_the_next_start()
    {
        await using S2Rig rig = await S2Rig.StartAsync(new Dictionary<string, string> { ["S2_SHUTDOWN_TIMEOUT"] = "1500ms" });
        await rig.StartSessionAsync();
        await rig.PublishAsync(100);
        await rig.WaitStoredAsync(100, TimeSpan.FromSeconds(10));
        rig.S2.Faults.GoDown();
        await rig.PublishAsync(400);

        TimeSpan took = await rig.StopDaemonAsync();
        Assert.True(took >= TimeSpan.FromSeconds(1.2) && took < TimeSpan.FromSeconds(6), $"shutdown took {took}");
        Assert.Contains("not yet shipped", rig.Daemon.Stderr, StringComparison.Ordinal);
        Assert.Equal(100, rig.StoredCount);

        rig.S2.Faults.ComeBackUp();
        await rig.StartDaemonAsync();
        await rig.WaitStoredAsync(500, TimeSpan.FromSeconds(20));
        await Task.Delay(200);
        rig.AssertExactlyOnce(500);
    }
}
