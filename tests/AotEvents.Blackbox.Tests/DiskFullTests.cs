using System.Text.Json;
using System.Text.RegularExpressions;
using static AotEvents.Blackbox.Tests.ReplayRig;

namespace AotEvents.Blackbox.Tests;

/// <summary>
/// A small tmpfs mounted for one test (the only way to get a real "disk full" or a read-only
/// directory that root cannot write to). Needs CAP_SYS_ADMIN; see <see cref="TmpfsFactAttribute"/>.
/// </summary>
public sealed class Tmpfs : IDisposable
{
    private Tmpfs(string path) => Path = path;

    public string Path { get; }

    public static Tmpfs Mount(string size, bool readOnly = false)
    {
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "aotevents-tmpfs-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", (readOnly ? "ro," : "") + "size=" + size, "tmpfs", dir);
        if (code != 0)
        {
            Directory.Delete(dir);
            throw new InvalidOperationException($"mount -t tmpfs failed ({code}): {output}");
        }
        return new Tmpfs(dir);
    }

    /// <summary>Null when a tmpfs can be mounted here, else why not.</summary>
    public static string? Unavailable => s_unavailable.Value;

    private static readonly Lazy<string?> s_unavailable = new(() =>
    {
        if (!OperatingSystem.IsLinux()) return "needs Linux (mount -t tmpfs)";
        try
        {
            using Tmpfs t = Mount("64k");
            return null;
        }
        catch (Exception e)
        {
            return "cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): " + e.Message;
        }
    });

    public void Dispose()
    {
        if (Run("umount", Path).Code != 0) Run("umount", "-l", Path);
        try
        {
            Directory.Delete(Path, true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A fact that is skipped, with the reason, where no tmpfs can be mounted.</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute()
    {
        if (Tmpfs.Unavailable is { } reason) Skip = reason;
    }
}

/// <summary>
/// SPEC §3/§5/§8: a data directory that cannot take writes. Disk full while running → publishes refused
/// with 507 and no accepted event lost, back to normal once space is freed; an unusable directory or a
/// bad size stops the start with a clear message.
/// </summary>
public sealed class DiskFullTests
{
    /// <summary>Resource keys instead of text: what the AOT build prints for some runtime exceptions.</summary>
    private static readonly Regex ResourceKey = new(@"\b(IO|UnauthorizedAccess|Arg)_[A-Za-z_]+");

    [TmpfsFact]
    public async Task Disk_full_refuses_publishes_with_507_loses_no_accepted_event_and_recovers_when_space_is_freed()
    {
        using Tmpfs fs = Tmpfs.Mount("2m");
        string dataDir = Path.Combine(fs.Path, "data");
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_RING_CAPACITY"] = "1024" }, dataDir);
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        var accepted = new List<long>();
        var (first, last) = await PublishBatchAsync(http, Batch(200, i => MixedTypes[i % 2], 100), "?ack=disk");
        for (long s = first; s <= last; s++) accepted.Add(s);

        // Fill the file system to the last page.
        string filler = Path.Combine(fs.Path, "filler");
        using (var handle = File.OpenHandle(filler, FileMode.CreateNew, FileAccess.Write))
        {
            long offset = 0;
            foreach (int block in new[] { 64 * 1024, 4096, 512 })
            {
                var bytes = new byte[block];
                try
                {
                    while (true)
                    {
                        RandomAccess.Write(handle, bytes, offset);
                        offset += block;
                    }
                }
                catch (IOException)
                {
                }
            }
        }

        // Publish until the daemon notices: everything answered 200 before is accepted and must survive.
        ApiResult? refused = null;
        for (int i = 0; i < 20_000 && refused is null; i++)
        {
            ApiResult r = await http.PublishAsync(Event(MixedTypes[i % 2], i, 100));
            if (r.Status == 200) accepted.Add(r.Json().GetProperty("seq").GetInt64());
            else if (r.Status == 507) refused = r;
            else Assert.Fail("unexpected answer while the disk fills: " + r);
            if (i % 100 == 99) await Task.Delay(20); // let the writer find out
        }
        Assert.True(refused is not null, "no 507 although the file system is full");
        Assert.Contains("space", refused!.MessageText, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotMatch(ResourceKey, refused.MessageText);
        Assert.Equal(1, await MetricAsync(http, "aotevents_jsonl_fault"));
        long lastSeqWhileFull = await MetricAsync(http, "aotevents_last_seq");
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(507, (await http.PublishNdjsonAsync(Batch(5, _ => "console.log"))).Status); // batches too
            Assert.Equal(507, (await http.PublishAsync(Event("console.log", i), "?ack=disk")).Status);
        }
        Assert.Equal(lastSeqWhileFull, await MetricAsync(http, "aotevents_last_seq")); // refused publishes take no seq
        Assert.Contains("publishes are refused", d.Stderr);

        // Free the space: publishing works again (the writer retries), nothing accepted is missing.
        File.Delete(filler);
        DateTime until = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            ApiResult r = await http.PublishAsync(Event("console.log", -1), "?ack=disk");
            if (r.Status == 200)
            {
                Assert.Equal("disk", r.Header("X-Ack"));
                accepted.Add(r.Json().GetProperty("seq").GetInt64());
                break;
            }
            Assert.True(r.Status == 507 && DateTime.UtcNow < until, "publishing did not recover after freeing space: " + r);
            await Task.Delay(100);
        }
        (first, last) = await PublishBatchAsync(http, Batch(100, i => MixedTypes[i % 2]), "?ack=disk");
        for (long s = first; s <= last; s++) accepted.Add(s);
        Assert.Equal(0, await MetricAsync(http, "aotevents_jsonl_fault"));

        JsonlScan scan = JsonlScan.Read(dataDir);
        Assert.Empty(scan.Problems);
        Assert.Empty(scan.Duplicates);
        Assert.Equal(Enumerable.Range(1, (int)last).Select(i => (long)i), scan.Seqs); // 1..last, no hole, no tear
        Assert.Equal(accepted.Count, accepted.Distinct().Count());
        Assert.Equal(last, accepted.Max());
        Assert.True(accepted.Count > 300, $"only {accepted.Count} accepted");

        // And a reader gets every one of them, in order.
        await using var tap = await StreamTap.OpenAsync(d, "/events/stream?after_seq=0&format=ndjson", startAfter: 0);
        await tap.WaitForAsync(last, TimeSpan.FromSeconds(20));
        Assert.Empty(tap.Dropped);
        Assert.Equal(last, tap.Envelopes);
        Assert.Equal(0, await d.StopAsync());
    }

    [TmpfsFact]
    public async Task A_read_only_data_dir_stops_the_start_with_a_clear_message()
    {
        using Tmpfs fs = Tmpfs.Mount("64k", readOnly: true); // read-only even for root
        var (code, stdout, stderr) = await DaemonProcess.RunToExitAsync(new Dictionary<string, string> { ["EVENTS_DATA_DIR"] = fs.Path });
        string output = stdout + stderr;
        Assert.True(code != 0, "started on a read-only data directory:\n" + output);
        Assert.DoesNotContain("listening on", output);
        Assert.Contains(fs.Path, output);
        Assert.Contains("Read-only", output);
        Assert.DoesNotMatch(ResourceKey, output);
    }

    [Fact]
    public async Task A_data_dir_below_a_regular_file_stops_the_start_with_a_clear_message()
    {
        string file = Path.Combine(Path.GetTempPath(), "aotevents-not-a-dir-" + Guid.NewGuid().ToString("N")[..10]);
        await File.WriteAllTextAsync(file, "a regular file");
        try
        {
            foreach (string dir in new[] { Path.Combine(file, "data"), file })
            {
                var (code, stdout, stderr) = await DaemonProcess.RunToExitAsync(new Dictionary<string, string> { ["EVENTS_DATA_DIR"] = dir });
                string output = stdout + stderr;
                Assert.True(code != 0, $"started with EVENTS_DATA_DIR={dir}:\n{output}");
                Assert.DoesNotContain("listening on", output);
                string line = Assert.Single(output.Split('\n'), l => l.Contains("\"error\"", StringComparison.Ordinal));
                string message = JsonDocument.Parse(line).RootElement.GetProperty("msg").GetString()!;
                Assert.Contains(dir, message);
                Assert.Contains("not a directory", message);
                Assert.DoesNotMatch(ResourceKey, message);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("EVENTS_SEGMENT_BYTES", "abc")]
    [InlineData("EVENTS_SEGMENT_BYTES", "100")]
    [InlineData("EVENTS_SEGMENT_BYTES", "-5MiB")]
    [InlineData("EVENTS_MAX_DISK_BYTES", "1TB")]
    [InlineData("EVENTS_MAX_DISK_BYTES", "")]
    [InlineData("EVENTS_RING_MAX_BYTES", "12 parsecs")]
    public async Task A_bad_size_stops_the_start_with_a_message_naming_the_setting_and_the_expected_form(string variable, string value)
    {
        var (code, stdout, stderr) = await DaemonProcess.RunToExitAsync(new Dictionary<string, string> { [variable] = value });
        string output = stdout + stderr;
        Assert.True(code == 2, $"exit {code}:\n{output}");
        Assert.DoesNotContain("listening on", output);
        string line = Assert.Single(output.Split('\n'), l => l.Contains("\"error\"", StringComparison.Ordinal));
        string message = JsonDocument.Parse(line).RootElement.GetProperty("msg").GetString()!;
        Assert.Contains($"{variable}={value}", message);
        Assert.Matches("size in bytes|at least", message);
    }
}
