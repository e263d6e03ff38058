using System.Collections.Concurrent;
using System.Text.Json;
using Xunit.Abstractions;
using static AotEvents.Blackbox.Tests.ReplayRig;

namespace AotEvents.Blackbox.Tests;

/// <summary>
/// SPEC §5 crash safety against the published binary: kill -9 while clients publish with
/// <c>ack=disk</c>, restart on the same data directory, and check the files against the answers the
/// publishers received.
/// </summary>
public sealed class CrashTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Twenty_kill_9_rounds_under_ack_disk_publishing_lose_no_acknowledged_event()
    {
        const int Rounds = 20, Publishers = 4;
        int seed = Environment.TickCount;
        var random = new Random(seed);
        var env = new Dictionary<string, string>
        {
            ["EVENTS_SEGMENT_BYTES"] = "64KiB", // rotations happen during the rounds too
            ["EVENTS_RING_CAPACITY"] = "1024",
        };
        string dataDir = DaemonProcess.NewDataDir();
        var acked = new ConcurrentDictionary<long, int>(); // seq → how many 200 answers named it
        var envelopes = new ConcurrentDictionary<long, string>(); // seq → the envelope a single publish was answered with
        int cuts = 0;
        long totalAcked = 0;
        try
        {
            for (int round = 1; round <= Rounds + 1; round++)
            {
                await using var d = await DaemonProcess.StartAsync(env, dataDir);
                string ctx = $"seed {seed}, round {round}";
                if (d.Stderr.Contains("cut ", StringComparison.Ordinal)) cuts++;

                // The files after the crash: every line whole, no seq twice, every acknowledged seq there.
                JsonlScan scan = JsonlScan.Read(dataDir, keepLines: true);
                Assert.True(scan.Problems.Count == 0, $"{ctx}: {string.Join("\n", scan.Problems)}");
                Assert.True(scan.Duplicates.Count == 0, $"{ctx}: seqs twice in the files: {string.Join(", ", scan.Duplicates.Take(20))}");
                long[] lost = acked.Keys.Where(s => Array.BinarySearch(scan.Seqs, s) < 0).Order().ToArray();
                Assert.True(lost.Length == 0, $"{ctx}: acknowledged (ack=disk) but not in the files: {string.Join(", ", lost.Take(20))} ({scan.Describe()})");
                long[] twice = acked.Where(kv => kv.Value != 1).Select(kv => kv.Key).ToArray();
                Assert.True(twice.Length == 0, $"{ctx}: seqs acknowledged twice: {string.Join(", ", twice.Take(20))}");
                foreach (var (seq, envelope) in envelopes)
                    Assert.True(scan.Lines[seq] == envelope, $"{ctx}: seq {seq} in the files:\n{scan.Lines[seq]}\nanswered:\n{envelope}");

                using var http = d.CreateClient();
                if (round == 1) await http.StartSessionAsync();
                // The seq continues right after the highest one in the files (the session survived).
                ApiResult probe = await http.PublishAsync(Event("console.log", -round), "?ack=disk");
                Assert.True(probe.Status == 200, $"{ctx}: first publish after the restart → {probe}");
                long next = probe.Json().GetProperty("seq").GetInt64();
                Assert.True(next == scan.MaxSeq + 1, $"{ctx}: first seq after restart {next}, highest in the files {scan.MaxSeq}");
                Assert.True(acked.TryAdd(next, 1));
                if (round > Rounds) break;

                using var stop = new CancellationTokenSource();
                var failures = new ConcurrentQueue<string>();
                Task[] publishers = Enumerable.Range(0, Publishers)
                    .Select(p => Task.Run(() => PublishUntilKilledAsync(d, p, acked, envelopes, failures, stop.Token)))
                    .ToArray();
                await Task.Delay(random.Next(150, 700));
                await d.KillAsync();
                stop.Cancel();
                await Task.WhenAll(publishers).WaitAsync(TimeSpan.FromSeconds(30));
                Assert.True(failures.IsEmpty, $"{ctx}: {string.Join("\n", failures)}");
            }
            totalAcked = acked.Count;

            // A reader over the recovered files: every acknowledged event in order, nothing torn;
            // only seqs that were handed out but never written (not acknowledged) may be reported as
            // dropped, exactly where the files have holes.
            await using var last = await DaemonProcess.StartAsync(env, dataDir);
            JsonlScan final = JsonlScan.Read(dataDir);
            await using (var tap = await StreamTap.OpenAsync(last, "/events/stream?after_seq=0&format=ndjson", startAfter: 0, record: true))
            {
                await tap.WaitForAsync(final.MaxSeq, TimeSpan.FromSeconds(30), "reader after the last restart");
                await Task.Delay(100);
                Assert.Equal(final.Seqs, tap.Seqs);
                Assert.Equal(final.Missing(1, final.MaxSeq), tap.Dropped.Select(x => (x.From, x.To)).ToList());
            }
            Assert.Equal(0, await last.StopAsync());
            output.WriteLine($"seed {seed}: {Rounds} kill -9 rounds, {totalAcked} acknowledged events, {final.Seqs.Length} in the files, " +
                             $"{final.Missing(1, final.MaxSeq).Count} holes of unacknowledged seqs, {cuts} restarts cut a torn line");
            Assert.True(totalAcked > Rounds * 20, $"too few acknowledged events to mean anything: {totalAcked}");
        }
        finally
        {
            try
            {
                Directory.Delete(dataDir, true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task PublishUntilKilledAsync(DaemonProcess d, int publisher, ConcurrentDictionary<long, int> acked,
        ConcurrentDictionary<long, string> envelopes, ConcurrentQueue<string> failures, CancellationToken stop)
    {
        using var http = new HttpClient { BaseAddress = d.BaseUri, Timeout = TimeSpan.FromSeconds(20) };
        var random = new Random(publisher * 7919 + Environment.TickCount);
        for (long n = 0; !stop.IsCancellationRequested; n++)
        {
            string type = ReplayRig.MixedTypes[(int)(n % 2)]; // console and network: two files written per batch
            ApiResult r;
            bool batch = n % 3 == 0;
            try
            {
                r = batch
                    ? await http.PublishNdjsonAsync(Batch(random.Next(1, 40), i => ReplayRig.MixedTypes[(i + publisher) % 2], 60), "?ack=disk")
                    : await http.PublishAsync(Event(type, n, 60), "?ack=disk");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                return; // killed
            }
            if (r.Status != 200)
            {
                failures.Enqueue($"publisher {publisher}: {r}");
                return;
            }
            Assert.Equal("disk", r.Header("X-Ack"));
            JsonElement j = r.Json();
            long first = batch ? j.GetProperty("first_seq").GetInt64() : j.GetProperty("seq").GetInt64();
            long last = batch ? j.GetProperty("last_seq").GetInt64() : first;
            for (long s = first; s <= last; s++) acked.AddOrUpdate(s, 1, (_, c) => c + 1);
            if (!batch) envelopes[first] = r.Text;
        }
    }

    [Fact]
    public async Task A_torn_or_corrupt_last_line_is_cut_at_start_and_logged_and_readers_never_see_it()
    {
        string dataDir = DaemonProcess.NewDataDir();
        try
        {
            long last;
            await using (var d = await DaemonProcess.StartAsync(dataDir: dataDir))
            {
                using var http = d.CreateClient();
                await http.StartSessionAsync();
                (_, last) = await PublishBatchAsync(http, Batch(100, i => ReplayRig.MixedTypes[i % 3]), "?ack=disk");
                Assert.Equal(0, await d.StopAsync());
            }
            // What a crash can leave: half a line, a zero-filled tail, a whole line of garbage.
            string console = Path.Combine(dataDir, "console.log");
            string network = Path.Combine(dataDir, "network.log");
            string page = Path.Combine(dataDir, "page.log");
            long consoleLength = new FileInfo(console).Length, networkLength = new FileInfo(network).Length, pageLength = new FileInfo(page).Length;
            await File.AppendAllTextAsync(console, $"{{\"capture_session_id\":\"x\",\"seq\":{last + 1},\"event\":{{\"ty");
            await using (var f = new FileStream(network, FileMode.Append)) f.Write(new byte[300]);
            await File.AppendAllTextAsync(page, $"{{\"capture_session_id\":\"x\",\"seq\":{last + 2},\"ev\n");

            await using (var d = await DaemonProcess.StartAsync(dataDir: dataDir))
            {
                Assert.Equal(consoleLength, new FileInfo(console).Length);
                Assert.Equal(networkLength, new FileInfo(network).Length);
                Assert.Equal(pageLength, new FileInfo(page).Length);
                string[] cutLines = d.Stderr.Split('\n').Where(l => l.Contains("cut ", StringComparison.Ordinal)).ToArray();
                Assert.True(cutLines.Length == 3, "expected one log line per repaired file:\n" + d.Stderr);
                foreach (string f in new[] { "console.log", "network.log", "page.log" })
                    Assert.Contains(cutLines, l => l.Contains(f, StringComparison.Ordinal));

                JsonlScan scan = JsonlScan.Read(dataDir);
                Assert.Empty(scan.Problems);
                Assert.Equal(Enumerable.Range(1, (int)last).Select(i => (long)i), scan.Seqs);

                using var http = d.CreateClient();
                Published next = await http.PublishOkAsync(Event("console.log", 1), "?ack=disk");
                Assert.Equal(last + 1, next.Seq); // numbering goes on after the highest whole line
                await using var tap = await StreamTap.OpenAsync(d, "/events/stream?after_seq=0", startAfter: 0);
                await tap.WaitForAsync(last + 1, TimeSpan.FromSeconds(10));
                await Task.Delay(100);
                Assert.Empty(tap.Dropped);
                Assert.Equal(last + 1, tap.Position);
                Assert.Equal(last + 1, tap.Envelopes);
                JsonlScan after = JsonlScan.Read(dataDir);
                Assert.Empty(after.Problems);
                Assert.Equal(Enumerable.Range(1, (int)last + 1).Select(i => (long)i), after.Seqs);
            }
        }
        finally
        {
            Directory.Delete(dataDir, true);
        }
    }
}
