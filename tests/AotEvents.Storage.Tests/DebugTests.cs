using Xunit.Abstractions;
using AotEvents.Events;
namespace AotEvents.Storage.Tests;
public sealed class DebugTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Dbg()
    {
        for (int round = 0; round < 5; round++)
        {
            using var h = new WriterHarness(segmentBytes: 4 * 1024, indexStride: 512);
            var writer = Task.Run(() => h.Write(1, 15000, batch: 7));
            bool done = await Task.WhenAny(writer, Task.Delay(10000)) == writer;
            output.WriteLine($"round {round} done {done} written {h.Writer.WrittenSeq} durable {h.Writer.DurableSeq}");
            if (!done) { foreach (var l in h.Log) output.WriteLine(l); Assert.Fail("writer stuck"); }
        }
    }
}
