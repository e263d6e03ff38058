using System.Globalization;
using System.Text.RegularExpressions;
using static AotEvents.Blackbox.Tests.Api;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §8: /healthz, /metrics, /openapi.yaml and the route list.</summary>
public sealed partial class MetricsTests
{
    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.]+(?:[eE][+-]?[0-9]+)?|NaN|[+-]Inf)( -?[0-9]+)?$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$")]
    private static partial Regex CommentLine();

    /// <summary>Samples of a Prometheus text exposition, asserting its syntax.</summary>
    internal static Dictionary<string, double> Parse(string text)
    {
        var samples = new Dictionary<string, double>();
        var types = new Dictionary<string, string>();
        foreach (string line in text.Split('\n'))
        {
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                Match c = CommentLine().Match(line);
                Assert.True(c.Success, "bad comment line: " + line);
                if (c.Groups[1].Value == "TYPE")
                {
                    Assert.Contains(c.Groups[3].Value, new[] { "counter", "gauge", "histogram", "summary", "untyped" });
                    types[c.Groups[2].Value] = c.Groups[3].Value;
                }
                continue;
            }
            Match m = SampleLine().Match(line);
            Assert.True(m.Success, "bad sample line: " + line);
            string name = m.Groups[1].Value;
            Assert.True(types.ContainsKey(name) || types.Keys.Any(t => name.StartsWith(t, StringComparison.Ordinal)), "sample without # TYPE: " + name);
            if (types.TryGetValue(name, out string? type) && type == "counter")
                Assert.True(name.EndsWith("_total", StringComparison.Ordinal), "a counter's name ends in _total: " + name);
            samples[name + m.Groups[2].Value] = double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
        }
        return samples;
    }

    /// <summary>The value of the one sample whose name contains all <paramref name="words"/> (e.g. "published").</summary>
    internal static double Value(string text, params string[] words)
    {
        var matches = Parse(text).Where(kv => words.All(w => kv.Key.Contains(w, StringComparison.Ordinal))).ToList();
        Assert.True(matches.Count >= 1, $"no metric named with {string.Join("+", words)} in:\n{text}");
        return matches.OrderBy(kv => kv.Key.Length).First().Value;
    }

    [Fact]
    public async Task Healthz_is_200()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult r = await http.GetResultAsync("/healthz");
        Assert.Equal(200, r.Status);
    }

    [Fact]
    public async Task Metrics_are_Prometheus_text_with_the_counters_of_the_spec()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        for (int i = 0; i < 3; i++) await http.PublishOkAsync("""{"type":"console.log"}""");
        Assert.Equal(400, (await http.PublishAsync("""{"type":""}""")).Status);
        Assert.Equal(400, (await http.PublishAsync("nope")).Status);
        await http.PublishOkAsync("""{"type":"console.log"}""", "?ack=disk");

        ApiResult r = await http.GetResultAsync("/metrics");
        Assert.Equal(200, r.Status);
        Assert.StartsWith("text/plain", r.Header("Content-Type"));
        string text = r.Text;
        Parse(text);
        Assert.Equal(4, Value(text, "published"));
        Assert.Equal(2, Value(text, "refused"));
        Assert.Equal(4, Value(text, "written"));
        Assert.Equal(0, Value(text, "replayed"));
        Assert.Equal(0, Value(text, "dropped"));
        Assert.Equal(0, Value(text, "subscribers"));
        Assert.InRange(Value(text, "ring"), 0, 1e12);
        double rss = Parse(text).Where(kv => kv.Key.Contains("resident", StringComparison.Ordinal) || kv.Key.Contains("rss", StringComparison.Ordinal)).Select(kv => kv.Value).Single();
        Assert.InRange(rss, 1 << 20, 1L << 31);
    }

    [Fact]
    public async Task With_S2_configured_metrics_report_shipping_and_lag()
    {
        // S2 pointed at a port nobody listens on: shipping is on but cannot make progress.
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string>
        {
            ["S2_BASIN"] = "test-basin",
            ["S2_ACCESS_TOKEN"] = "unused-token",
            ["S2_ENDPOINT"] = "http://127.0.0.1:9",
        });
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        for (int i = 0; i < 3; i++) await http.PublishOkAsync("""{"type":"console.log"}""");
        string text = (await http.GetResultAsync("/metrics")).Text;
        Parse(text);
        Assert.Equal(0, Value(text, "acked"));
        Assert.InRange(Value(text, "shipped"), 0, 1e9);
        Assert.True(Parse(text).Any(kv => kv.Key.Contains("lag", StringComparison.Ordinal) && kv.Value > 0), "an S2 lag metric > 0 expected:\n" + text);
    }

    [Fact]
    public async Task The_openapi_document_is_served_as_kept_in_the_repository()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        ApiResult r = await http.GetResultAsync("/openapi.yaml");
        Assert.Equal(200, r.Status);
        Assert.Contains("yaml", r.Header("Content-Type"));
        Assert.StartsWith("openapi: 3.1", r.Text);
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(DaemonProcess.RepoRoot, "docs", "openapi.yaml")), r.Text);
    }

    /// <summary>(path, METHOD) pairs under <c>paths:</c> in docs/openapi.yaml.</summary>
    internal static HashSet<(string, string)> OpenApiRoutes()
    {
        var routes = new HashSet<(string, string)>();
        string? path = null;
        bool inPaths = false;
        foreach (string line in File.ReadLines(Path.Combine(DaemonProcess.RepoRoot, "docs", "openapi.yaml")))
        {
            if (line.Length == 0 || line.TrimStart().StartsWith('#')) continue;
            if (!char.IsWhiteSpace(line[0]))
            {
                inPaths = line.TrimEnd() == "paths:";
                path = null;
                continue;
            }
            if (!inPaths) continue;
            Match p = Regex.Match(line, @"^  (/\S*?)\s*:\s*$");
            if (p.Success)
            {
                path = p.Groups[1].Value.Trim('\'', '"');
                continue;
            }
            Match m = Regex.Match(line, @"^    (get|put|post|delete|options|head|patch|trace)\s*:");
            if (m.Success && path is not null) routes.Add((path, m.Groups[1].Value.ToUpperInvariant()));
        }
        return routes;
    }

    /// <summary>The daemon's route table, read from ApiRouter.Routes in the source.</summary>
    internal static HashSet<(string, string)> SourceRoutes()
    {
        string source = File.ReadAllText(Path.Combine(DaemonProcess.RepoRoot, "src", "AotEvents.Http", "Handlers", "ApiRouter.cs"));
        int start = source.IndexOf("Routes =", StringComparison.Ordinal);
        Assert.True(start >= 0, "ApiRouter.Routes not found");
        int end = source.IndexOf("];", start, StringComparison.Ordinal);
        return Regex.Matches(source[start..end], @"\(""(/[^""]*)"",\s*""([A-Z]+)""\)")
            .Select(m => (m.Groups[1].Value, m.Groups[2].Value)).ToHashSet();
    }

    private static readonly (string, string)[] SpecRoutes =
    [
        ("/events/start", "POST"), ("/events/session", "GET"), ("/events/stop", "POST"), ("/events/publish", "POST"),
        ("/events/stream", "GET"), ("/telemetry/events", "GET"), ("/healthz", "GET"), ("/metrics", "GET"), ("/openapi.yaml", "GET"),
    ];

    [Fact]
    public void Every_served_route_is_in_the_openapi_document_and_vice_versa()
    {
        HashSet<(string, string)> yaml = OpenApiRoutes();
        HashSet<(string, string)> served = SourceRoutes();
        Assert.NotEmpty(yaml);
        Assert.Empty(served.Except(yaml).Select(r => $"served but not documented: {r.Item2} {r.Item1}"));
        Assert.Empty(yaml.Except(served).Select(r => $"documented but not served: {r.Item2} {r.Item1}"));
        Assert.Empty(SpecRoutes.Except(yaml).Select(r => $"in the SPEC but not documented: {r.Item2} {r.Item1}"));
    }

    [Fact]
    public async Task Every_route_in_the_openapi_document_is_served_by_the_binary()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        // GETs first (the session exists), then POSTs with stop last.
        var routes = OpenApiRoutes().OrderBy(r => r.Item2 == "GET" ? 0 : 1).ThenBy(r => r.Item1 == "/events/stop" ? 1 : 0).ToList();
        var problems = new List<string>();
        foreach (var (path, method) in routes)
        {
            int status;
            string body;
            if (path == "/events/stream")
            {
                await using RawConnection c = await RawConnection.OpenAsync(d);
                await c.SendAsync("GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n");
                RawResponse head = await c.ReadHeadAsync();
                status = head.Status;
                body = "";
            }
            else
            {
                byte[]? content = path == "/events/publish" ? """{"type":"console.log"}"""u8.ToArray() : null;
                ApiResult r = await http.SendAsync(new HttpMethod(method), path, content, content is null ? null : "application/json");
                status = r.Status;
                body = r.Text;
            }
            if (status is 404 or 405 or >= 500) problems.Add($"{method} {path} → {status} {body}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.Equal(404, (await http.GetResultAsync("/not/documented")).Status);
    }
}
