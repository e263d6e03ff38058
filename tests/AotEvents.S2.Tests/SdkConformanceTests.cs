using Xunit.Abstractions;

namespace AotEvents.S2.Tests;

/// <summary>
/// The stand-in must agree with the official spec: the official S2 TypeScript SDK (@s2-dev/streamstore,
/// pinned in tests/s2-sdk-check) is pointed at it the way one points it at s2-lite and checks append,
/// read (JSON and SSE), check tail, stream management and the error shapes.
/// </summary>
public sealed class SdkConformanceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_official_typescript_sdk_agrees_with_the_stand_in()
    {
        string checkDir = Path.Combine(TestSupport.RepoRoot(), "tests", "s2-sdk-check");
        if (!File.Exists(Path.Combine(checkDir, "node_modules", "@s2-dev", "streamstore", "package.json")))
        {
            (int npmExit, string npmOutput) = await TestSupport.RunAsync("npm", "ci --no-audit --no-fund", checkDir, TimeSpan.FromMinutes(3));
            output.WriteLine(npmOutput);
            Assert.True(npmExit == 0, "npm ci failed:\n" + npmOutput);
        }

        await using S2StandIn.S2StandIn standIn = await TestSupport.StartStandInAsync();
        (int exit, string log) = await TestSupport.RunAsync("node", $"check.mjs {standIn.Endpoint} {TestSupport.Token}", checkDir, TimeSpan.FromSeconds(60));
        output.WriteLine(log);

        Assert.True(exit == 0, "the SDK check failed:\n" + log);
        Assert.Contains(" 0 failed", log, StringComparison.Ordinal);
        Assert.True(standIn.CountOf(global::S2StandIn.S2Op.Append) >= 3, "the SDK appended through the stand-in");
        Assert.Contains(standIn.Requests, r => r.Accept == "text/event-stream");
        Assert.All(standIn.Requests, r => Assert.Equal("sdk-check-basin", r.BasinHeader));
    }
}
