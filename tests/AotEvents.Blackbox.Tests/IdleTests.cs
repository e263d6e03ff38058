namespace AotEvents.Blackbox.Tests;

/// <summary>An idle daemon must cost (almost) no CPU: it lives inside a browser VM.</summary>
public sealed class IdleTests
{
    [Fact]
    public async Task An_idle_daemon_with_a_subscriber_and_written_events_uses_almost_no_CPU()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        (await http.PostAsync("/events/start", null)).EnsureSuccessStatusCode();
        for (int i = 0; i < 10; i++)
            (await http.PostAsync("/events/publish?ack=disk",
                new StringContent($"{{\"type\":\"console.log\",\"data\":{{\"i\":{i}}}}}"))).EnsureSuccessStatusCode();
        using var stream = await http.GetStreamAsync("/events/stream?after_seq=0");
        await Task.Delay(1000); // let the fsync interval and the replay settle

        long before = CpuTicks(d.Pid);
        await Task.Delay(3000);
        long used = CpuTicks(d.Pid) - before;

        // 3 s at 100 ticks/s: a spinning thread would burn ~300 ticks; the heartbeat and timers a few.
        Assert.True(used < 30, $"idle daemon used {used} CPU ticks in 3 s");
    }

    /// <summary>utime + stime of the process, in clock ticks (/proc/pid/stat fields 14 and 15).</summary>
    private static long CpuTicks(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11]) + long.Parse(fields[12]);
    }
}
