using System.Diagnostics;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>The curl examples of README.md "## Using it", run verbatim with bash against a daemon.</summary>
public sealed class ReadmeTests
{
    /// <summary>The commands of the first ```sh block under "## Using it", backslash continuations joined.</summary>
    internal static List<string> UsingItCommands()
    {
        string[] lines = File.ReadAllLines(Path.Combine(DaemonProcess.RepoRoot, "README.md"));
        int section = Array.FindIndex(lines, l => l.Trim() == "## Using it");
        Assert.True(section >= 0, "README.md has no '## Using it' section");
        int open = Array.FindIndex(lines, section, l => l.Trim() == "```sh");
        Assert.True(open > section, "no ```sh block under '## Using it'");
        int close = Array.FindIndex(lines, open + 1, l => l.Trim() == "```");
        var commands = new List<string>();
        string pending = "";
        foreach (string line in lines[(open + 1)..close])
        {
            if (line.TrimEnd().EndsWith('\\'))
            {
                pending += line.TrimEnd()[..^1] + " ";
                continue;
            }
            string command = (pending + line).Trim();
            pending = "";
            if (command.Length > 0 && !command.StartsWith('#')) commands.Add(command);
        }
        return commands;
    }

    private static Process Bash(string command)
    {
        var psi = new ProcessStartInfo("bash", ["-c", command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        return Process.Start(psi)!;
    }

    [Fact]
    public async Task The_README_curl_examples_run_verbatim()
    {
        List<string> commands = UsingItCommands();
        Assert.True(commands.Count >= 6, "expected the README's curl examples, got: " + string.Join("\n", commands));
        Assert.All(commands, c => Assert.Contains("localhost:10001", c));

        await using var d = await DaemonProcess.StartAsync();
        var outputs = new List<(string Command, string Output)>();
        foreach (string readme in commands)
        {
            string command = readme.Replace("localhost:10001", $"localhost:{d.Port}", StringComparison.Ordinal);
            using Process p = Bash(command);
            if (command.Contains("/events/stream", StringComparison.Ordinal))
            {
                // A stream never ends: read the lines that are there, then stop curl.
                var lines = new List<string>();
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                while (lines.Count < 3 && !p.HasExited)
                {
                    // WaitAsync, not the token alone: a pipe read does not always observe cancellation.
                    string? line;
                    try
                    {
                        line = await p.StandardOutput.ReadLineAsync(cts.Token).AsTask().WaitAsync(cts.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        p.Kill(entireProcessTree: true);
                        throw new TimeoutException($"`{readme}` printed {lines.Count} lines in 10 s: {string.Join("\n", lines)}");
                    }
                    if (line is null) break;
                    lines.Add(line);
                }
                if (p.HasExited) Assert.Fail($"`{readme}` exited {p.ExitCode}: {p.StandardError.ReadToEnd()}");
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
                outputs.Add((readme, string.Join("\n", lines)));
                continue;
            }
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20))) await p.WaitForExitAsync(cts.Token);
            string stdout = await p.StandardOutput.ReadToEndAsync();
            string stderr = await p.StandardError.ReadToEndAsync();
            Assert.True(p.ExitCode == 0, $"`{readme}` exited {p.ExitCode}: {stderr}");
            outputs.Add((readme, stdout));
        }

        foreach (var (command, output) in outputs)
        {
            Assert.False(string.IsNullOrWhiteSpace(output), $"`{command}` printed nothing");
            foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                JsonElement e = JsonDocument.Parse(line).RootElement;
                Assert.False(e.TryGetProperty("message", out _), $"`{command}` was refused: {line}");
            }
        }

        // What the examples print, in order.
        JsonElement Out(string fragment) =>
            JsonDocument.Parse(outputs.First(o => o.Command.Contains(fragment, StringComparison.Ordinal)).Output.Split('\n')[0]).RootElement;
        Assert.Equal("running", Out("/events/start").GetProperty("status").GetString());
        JsonElement first = Out("-d '{\"type\":\"console.log\"");
        Assert.Equal(1, first.GetProperty("seq").GetInt64());
        Assert.Equal("""{"message":"hi"}""", first.GetProperty("event").GetProperty("data").GetRawText());
        JsonElement batch = Out("application/x-ndjson");
        Assert.Equal(2, batch.GetProperty("accepted").GetInt32());
        Assert.Equal(2, batch.GetProperty("first_seq").GetInt64());
        string[] stream = outputs.First(o => o.Command.Contains("/events/stream", StringComparison.Ordinal)).Output.Split('\n');
        Assert.Equal([1L, 2L, 3L], stream.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("seq").GetInt64()));
        Assert.Equal("https://example.com/", JsonDocument.Parse(stream[2]).RootElement.GetProperty("event").GetProperty("url").GetString());
        Assert.Equal(3, Out("/events/session").GetProperty("published").GetInt64());
        JsonElement stopped = Out("/events/stop");
        Assert.Equal("stopped", stopped.GetProperty("status").GetString());
        Assert.Equal(4, stopped.GetProperty("published").GetInt64());
    }
}
