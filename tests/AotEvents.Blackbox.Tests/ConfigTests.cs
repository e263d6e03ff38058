using System.Text;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>SPEC §8: configuration, --help, refusing bad values, the start log line.</summary>
public sealed class ConfigTests
{
    /// <summary>Every variable of SPEC §8 and §6 with the spellings its default may take.</summary>
    private static readonly (string Variable, string[] Defaults)[] Variables =
    [
        ("HOST", ["127.0.0.1"]),
        ("PORT", ["10001"]),
        ("EVENTS_DATA_DIR", ["./data"]),
        ("EVENTS_RING_CAPACITY", ["8192"]),
        ("EVENTS_RING_MAX_BYTES", ["16777216", "16MiB"]),
        ("EVENTS_MAX_BODY_BYTES", ["16777216", "16MiB"]),
        ("EVENTS_FSYNC_INTERVAL", ["200ms"]),
        ("EVENTS_SEGMENT_BYTES", ["67108864", "64MiB"]),
        ("EVENTS_MAX_DISK_BYTES", ["1073741824", "1GiB"]),
        ("EVENTS_KEEPALIVE", ["15s"]),
        ("EVENTS_REQUEST_TIMEOUT", ["30s"]),
        ("EVENTS_IDLE_TIMEOUT", ["120s"]),
        ("EVENTS_MAX_CONNECTIONS", ["10000"]),
        ("EVENTS_API_TOKEN", ["unset"]),
        ("EVENTS_CORS_ORIGINS", ["unset"]),
        ("S2_BASIN", ["unset", "required"]),
        ("S2_ACCESS_TOKEN", ["unset", "required"]),
        ("S2_STREAM", ["unset"]),
        ("S2_ENDPOINT", ["https://{basin}.b.s2.dev"]),
        ("S2_BATCHER_LINGER", ["100ms"]),
        ("S2_BATCHER_MAX_RECORDS", ["50"]),
        ("S2_BATCHER_MAX_BYTES", ["1048576", "1MiB"]),
        ("S2_SHUTDOWN_TIMEOUT", ["10s"]),
    ];

    [Fact]
    public async Task Help_lists_every_variable_and_flag_with_its_default_and_exits_0()
    {
        var (code, stdout, stderr) = await DaemonProcess.RunToExitAsync(args: ["--help"]);
        Assert.Equal(0, code);
        string help = stdout + stderr;
        Assert.DoesNotContain("listening", help);
        string[] lines = help.Split('\n');
        var problems = new List<string>();
        foreach (var (variable, defaults) in Variables)
        {
            string? line = lines.FirstOrDefault(l => System.Text.RegularExpressions.Regex.IsMatch(l, $@"(?<![A-Z0-9_]){variable}(?![A-Z0-9_])"));
            if (line is null) problems.Add($"{variable} is not listed");
            else if (!defaults.Any(def => line.Contains(def, StringComparison.Ordinal))) problems.Add($"{variable}: no default ({string.Join(" or ", defaults)}) on: {line.Trim()}");
        }
        foreach (string flag in new[] { "--port", "--host", "--data-dir", "--help" })
            if (!help.Contains(flag, StringComparison.Ordinal)) problems.Add($"flag {flag} is not listed");
        Assert.True(problems.Count == 0, string.Join("\n", problems) + "\n--- help:\n" + help);
    }

    [Theory]
    [InlineData("PORT", "abc")]
    [InlineData("PORT", "70000")]
    [InlineData("EVENTS_FSYNC_INTERVAL", "fast")]
    [InlineData("EVENTS_KEEPALIVE", "-1s")]
    [InlineData("EVENTS_REQUEST_TIMEOUT", "soon")]
    [InlineData("EVENTS_IDLE_TIMEOUT", "12parsecs")]
    [InlineData("EVENTS_RING_CAPACITY", "lots")]
    [InlineData("EVENTS_MAX_BODY_BYTES", "big")]
    [InlineData("EVENTS_MAX_CONNECTIONS", "-5")]
    [InlineData("EVENTS_SEGMENT_BYTES", "1.5GB")]
    [InlineData("S2_BATCHER_MAX_RECORDS", "5000")]
    [InlineData("S2_BATCHER_LINGER", "later")]
    public async Task A_bad_value_stops_the_start_with_a_message_naming_it(string variable, string value)
    {
        var (code, stdout, stderr) = await DaemonProcess.RunToExitAsync(new Dictionary<string, string> { [variable] = value });
        Assert.NotEqual(0, code);
        string output = stdout + stderr;
        Assert.Contains(variable, output);
        Assert.DoesNotContain("listening on", output);
    }

    [Theory]
    [InlineData("--port", "abc")]
    [InlineData("--keepalive", "fast")]
    [InlineData("--bogus-flag", "1")]
    public async Task A_bad_flag_stops_the_start_with_a_message_naming_it(string flag, string value)
    {
        var (code, stdout, stderr) = await DaemonProcess.RunToExitAsync(args: [flag, value]);
        Assert.NotEqual(0, code);
        Assert.Contains(flag, stdout + stderr);
    }

    [Fact]
    public async Task Flags_override_the_environment()
    {
        await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string> { ["EVENTS_MAX_BODY_BYTES"] = "16777216" },
            args: ["--max-body-bytes", "2048"]);
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        ApiResult r = await http.PublishAsync("{\"type\":\"console.log\",\"data\":\"" + new string('x', 10_000) + "\"}");
        Assert.Equal(413, r.Status);
    }

    [Fact]
    public async Task The_start_log_line_is_JSON_with_the_effective_config_and_tokens_redacted()
    {
        const string apiSecret = "api-SECRET-4711";
        const string s2Secret = "s2-SECRET-0815";
        string dataDir = DaemonProcess.NewDataDir();
        try
        {
            await using var d = await DaemonProcess.StartAsync(new Dictionary<string, string>
            {
                ["EVENTS_API_TOKEN"] = apiSecret,
                ["S2_ACCESS_TOKEN"] = s2Secret,
                ["S2_BASIN"] = "my-basin",
                ["S2_ENDPOINT"] = "http://127.0.0.1:9",
                ["EVENTS_MAX_CONNECTIONS"] = "1234",
                ["EVENTS_RING_CAPACITY"] = "4321",
                ["EVENTS_CORS_ORIGINS"] = "http://app.example",
            }, dataDir);
            using var http = d.CreateClient();
            http.DefaultRequestHeaders.Authorization = new("Bearer", apiSecret);
            await http.StartSessionAsync();
            await http.PublishOkAsync("""{"type":"console.log"}""");
            Assert.Equal(0, await d.StopAsync());

            string[] lines = d.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.NotEmpty(lines);
            foreach (string line in lines)
            {
                using var doc = JsonDocument.Parse(line); // every log line is one JSON object
                Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
            }
            string start = lines.First(l => l.Contains("listening", StringComparison.Ordinal));
            Assert.Contains($"127.0.0.1:{d.Port}", start);
            string startJson = JsonDocument.Parse(start).RootElement.GetRawText();
            var values = new List<string>();
            CollectValues(JsonDocument.Parse(start).RootElement, values);
            Assert.Contains(values, v => v == "1234");
            Assert.Contains(values, v => v == "4321");
            Assert.Contains(values, v => v.Contains("http://app.example", StringComparison.Ordinal));
            Assert.Contains(values, v => v.Contains("my-basin", StringComparison.Ordinal));
            Assert.Contains(values, v => v.TrimEnd('/') == Path.GetFullPath(dataDir).TrimEnd('/') || v == dataDir);
            Assert.DoesNotContain("SECRET", d.Stderr + d.Stdout);
            Assert.True(startJson.Length > 0);
        }
        finally
        {
            Directory.Delete(dataDir, true);
        }
    }

    private static void CollectValues(JsonElement e, List<string> into)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject()) CollectValues(p.Value, into);
                break;
            case JsonValueKind.Array:
                foreach (var x in e.EnumerateArray()) CollectValues(x, into);
                break;
            case JsonValueKind.String:
                into.Add(e.GetString()!);
                break;
            default:
                into.Add(e.GetRawText());
                break;
        }
    }

    [Fact]
    public async Task SIGINT_also_shuts_down_cleanly_with_exit_0()
    {
        await using var d = await DaemonProcess.StartAsync();
        using var http = d.CreateClient();
        await http.StartSessionAsync();
        Published p = await http.PublishOkAsync("""{"type":"console.log"}""");
        d.Signal("INT");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!d.HasExited) await Task.Delay(50, cts.Token);
        Assert.Equal(0, d.ExitCode);
        Assert.Equal([p.Text], await Api.JsonlLinesAsync(d.DataDir, "console", 1, TimeSpan.Zero));
        Assert.Equal(Encoding.UTF8.GetByteCount(p.Text) + 1, new FileInfo(Path.Combine(d.DataDir, "console.log")).Length);
    }
}
