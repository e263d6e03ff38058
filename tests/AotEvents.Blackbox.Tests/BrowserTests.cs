using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>
/// A real browser: headless Chromium (Debian package) opens an EventSource on the stream, receives
/// published events, and after the daemon restarts resumes with Last-Event-ID, without gap or duplicate.
/// Driven through tests/browser/eventsource.mjs (playwright-core, launching /usr/bin/chromium).
/// </summary>
public sealed class BrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    private sealed class BrowserPage : IAsyncDisposable
    {
        private readonly Process _node;
        private readonly BlockingCollection<JsonElement> _reports = [];
        private readonly StringBuilder _log = new();

        public BrowserPage(string streamUrl, int pagePort)
        {
            string dir = Path.Combine(DaemonProcess.RepoRoot, "tests", "browser");
            var psi = new ProcessStartInfo("node", [Path.Combine(dir, "eventsource.mjs"), streamUrl, pagePort.ToString()])
            {
                WorkingDirectory = dir,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.Environment["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1";
            psi.Environment["CHROMIUM_PATH"] = Chromium;
            _node = new Process { StartInfo = psi };
            _node.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    _reports.CompleteAdding();
                    return;
                }
                lock (_log) _log.AppendLine(e.Data);
                try
                {
                    _reports.Add(JsonDocument.Parse(e.Data).RootElement.Clone());
                }
                catch (JsonException)
                {
                }
            };
            _node.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null) lock (_log) _log.AppendLine("stderr: " + e.Data);
            };
            _node.Start();
            _node.BeginOutputReadLine();
            _node.BeginErrorReadLine();
        }

        public string Log
        {
            get
            {
                lock (_log) return _log.ToString();
            }
        }

        /// <summary>Waits for the next report of <paramref name="kind"/>, skipping others; fails on "fatal".</summary>
        public JsonElement Next(string kind, TimeSpan timeout, List<JsonElement>? seen = null)
        {
            DateTime until = DateTime.UtcNow + timeout;
            while (true)
            {
                TimeSpan left = until - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !_reports.TryTake(out JsonElement report, left))
                    throw new TimeoutException($"no '{kind}' from the browser within {timeout}; log:\n{Log}");
                seen?.Add(report);
                string k = report.GetProperty("kind").GetString()!;
                if (k == "fatal") Assert.Fail("the browser driver failed: " + report + "\n" + Log);
                if (k == kind) return report;
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (!_node.HasExited)
                {
                    await _node.StandardInput.WriteLineAsync("quit");
                    _node.StandardInput.Close();
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    try
                    {
                        await _node.WaitForExitAsync(cts.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        _node.Kill(entireProcessTree: true);
                    }
                }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
            }
            _node.Dispose();
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task Chromium_EventSource_receives_events_and_resumes_with_Last_Event_ID_after_a_restart()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: run build/install-test-deps.sh (apt package chromium)");
        string playwright = Path.Combine(DaemonProcess.RepoRoot, "tests", "browser", "node_modules", "playwright-core");
        Assert.True(Directory.Exists(playwright), "tests/browser/node_modules is missing: run build/install-test-deps.sh (npm ci in tests/browser)");

        int pagePort = FreePort();
        string origin = $"http://127.0.0.1:{pagePort}";
        string dataDir = DaemonProcess.NewDataDir();
        DaemonProcess daemon = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_CORS_ORIGINS"] = origin }, dataDir);
        try
        {
            using var http = daemon.CreateClient();
            await http.StartSessionAsync();
            await http.PublishOkAsync("""{"type":"console.log","data":"before the page opened"}""");

            await using var page = new BrowserPage($"http://127.0.0.1:{daemon.Port}/events/stream", pagePort);
            page.Next("ready", TimeSpan.FromSeconds(60));
            page.Next("open", TimeSpan.FromSeconds(20));

            var published = new List<Published>();
            for (int i = 1; i <= 3; i++)
                published.Add(await http.PublishOkAsync($"{{\"type\":\"console.log\",\"source\":{{\"kind\":\"extension\"}},\"data\":{{\"n\":{i},\"text\":\"héllo\\nworld\"}}}}"));
            var received = new List<(string Id, string Data)>();
            for (int i = 0; i < 3; i++)
            {
                JsonElement m = page.Next("message", TimeSpan.FromSeconds(15));
                received.Add((m.GetProperty("lastEventId").GetString()!, m.GetProperty("data").GetString()!));
            }
            Assert.Equal(published.Select(p => (p.Seq.ToString(), p.Text)), received);

            // Restart the daemon on the same port and data directory: the stream ends, the browser
            // reconnects after `retry: 3000` with Last-Event-ID. Events published before it does must arrive.
            DaemonProcess stopped = daemon;
            daemon = await stopped.RestartAsync();
            await stopped.DisposeAsync(); // exited; the data directory stays with the new process
            using var http2 = daemon.CreateClient();
            var more = new List<Published>();
            for (int i = 4; i <= 5; i++)
                more.Add(await http2.PublishOkAsync($"{{\"type\":\"console.log\",\"data\":{{\"n\":{i}}}}}"));

            var seen = new List<JsonElement>();
            var after = new List<(string Id, string Data)>();
            for (int i = 0; i < 2; i++)
            {
                JsonElement m = page.Next("message", TimeSpan.FromSeconds(30), seen);
                after.Add((m.GetProperty("lastEventId").GetString()!, m.GetProperty("data").GetString()!));
            }
            Assert.Equal(more.Select(p => (p.Seq.ToString(), p.Text)), after);
            Published six = await http2.PublishOkAsync("""{"type":"console.log","data":{"n":6}}""");
            JsonElement live = page.Next("message", TimeSpan.FromSeconds(15), seen);
            Assert.Equal((six.Seq.ToString(), six.Text), (live.GetProperty("lastEventId").GetString()!, live.GetProperty("data").GetString()!));
            // No gap, no duplicate across the reconnect (seq 1 was published before the page opened).
            string[] ids = [.. received.Select(r => r.Id), .. after.Select(r => r.Id), live.GetProperty("lastEventId").GetString()!];
            Assert.Equal(["2", "3", "4", "5", "6", "7"], ids);

            // The reconnect carried Last-Event-ID with the last id the page had seen before the restart.
            var requests = seen.Where(r => r.GetProperty("kind").GetString() == "request").ToList();
            Assert.Contains(requests, r => r.GetProperty("lastEventId").ValueKind == JsonValueKind.String &&
                                           r.GetProperty("lastEventId").GetString() == published[^1].Seq.ToString());
            Assert.DoesNotContain(seen, r => r.GetProperty("kind").GetString() == "dropped");
        }
        finally
        {
            await daemon.DisposeAsync();
            Directory.Delete(dataDir, true);
        }
    }
}
