using System.Diagnostics;
using S2StandIn;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §6 under a hostile S2: 30 % failed appends, lost acks and a 10 s outage.</summary>
public sealed class S2FaultTests
{
    [Fact]
    public async Task Failing_appends_lost_acks_and_a_10_s_outage_still_ship_every_event_exactly_once()
    {
        await using S2Rig rig = await S2Rig.StartAsync(new Dictionary<string, string> { ["S2_SHUTDOWN_TIMEOUT"] = "1s" });
        rig.S2.Faults.FailRandomly(0.3, seed: 20260101);
        rig.S2.Faults.LoseNextAcks(5);

        await rig.StartSessionAsync();
        await rig.PublishAsync(2500);
        var outage = Stopwatch.StartNew();
        rig.S2.Faults.GoDown(TimeSpan.FromSeconds(10));
        await rig.PublishAsync(2500);
        await rig.StopSessionAsync();
        await rig.StopDaemonAsync(); // a restart in the middle of the outage
        await rig.StartDaemonAsync();
        await rig.StartSessionAsync();
        await rig.PublishAsync(5000);
        await rig.StopSessionAsync();

        // While S2 is down the daemon falls behind, and says so.
        await Task.Delay(1500);
        Assert.True(rig.S2.Faults.IsDown);
        Dictionary<string, double> down = await rig.MetricsAsync();
        Assert.True(down["aotevents_s2_lag_events"] > 5000, "lag_events " + down["aotevents_s2_lag_events"]);
        Assert.True(down["aotevents_s2_lag_seconds"] > 0.5, "lag_seconds " + down["aotevents_s2_lag_seconds"]);
        Assert.True(down["aotevents_s2_retries_total"] > 0);

        await rig.WaitStoredAsync(10_002, TimeSpan.FromSeconds(60));
        Assert.True(outage.Elapsed >= TimeSpan.FromSeconds(10));
        await Task.Delay(500);
        rig.AssertExactlyOnce(10_002);
        Assert.True(rig.S2.Requests.Count(r => r.Fault == S2FaultKind.Status) > 20, "random failures expected");
        Assert.Equal(5, rig.S2.Requests.Count(r => r.Fault == S2FaultKind.DroppedAfterLanding));
        Assert.True(rig.S2.RefusedConnections > 0 || rig.S2.Requests.Any(r => r.Fault == S2FaultKind.Down), "the outage was not seen");

        Dictionary<string, double> up = await rig.MetricsAsync();
        Assert.Equal(0, up["aotevents_s2_lag_events"]);
        Assert.Equal(0, up["aotevents_s2_lag_seconds"]);
        Assert.True(up["aotevents_s2_acked_total"] >= 5001);
        Assert.True(up["aotevents_s2_shipped_total"] > up["aotevents_s2_acked_total"], "retried appends count as shipped");
        Assert.True(up["aotevents_s2_retries_total"] > 0);
    }
}
