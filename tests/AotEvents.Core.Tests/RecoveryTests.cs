using System.Text;
using AotEvents.Events;
using AotEvents.Storage;

namespace AotEvents.Core.Tests;

/// <summary>SPEC §5: torn last lines are cut at start and the seq continues after the highest complete one.</summary>
public sealed class RecoveryTests
{
    /// <summary>Publishes seqs 1..n round-robin over console/network, then closes the pipeline.</summary>
    private static Harness Populate(int n)
    {
        var h = new Harness();
        for (int i = 1; i <= n; i++) h.PublishOk(i % 2 == 1 ? "{\"type\":\"console.x\"}" : "{\"type\":\"network.x\"}");
        h.Pipeline.Dispose();
        return h;
    }

    private static void Append(string path, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.Append, FileAccess.Write);
        f.Write(bytes);
    }

    [Fact]
    public void Torn_last_line_is_cut_and_the_next_seq_follows_the_highest_complete_one()
    {
        using var h = Populate(7); // console: 1,3,5,7  network: 2,4,6
        string network = Path.Combine(h.Dir, "network.log");
        byte[] good = File.ReadAllBytes(network);
        // A crash tore seq 8 in network.log half way through.
        string line8 = h.Lines(EventCategory.Network)[0].Replace("\"seq\":2,", "\"seq\":8,", StringComparison.Ordinal);
        Append(network, Encoding.UTF8.GetBytes(line8[..(line8.Length / 2)]));

        h.Reopen();
        Assert.Equal(good, File.ReadAllBytes(network));
        Assert.Contains(h.Log, m => m.Contains("network.log", StringComparison.Ordinal) && m.Contains("cut", StringComparison.Ordinal));
        Assert.Equal(7, h.Pipeline.LastSeq);
        Assert.Equal(8, h.Publish("{\"type\":\"network.y\"}").Envelope.Seq);
        h.Pipeline.Dispose();
        Assert.Equal([2L, 4, 6, 8], h.Lines(EventCategory.Network).Select(Files.Seq));
        Assert.Equal([1L, 3, 5, 7], h.Lines(EventCategory.Console).Select(Files.Seq));
    }

    [Fact]
    public void Torn_line_holding_the_highest_seq_does_not_count()
    {
        using var h = Populate(4); // console 1,3  network 2,4
        string console = Path.Combine(h.Dir, "console.log");
        Append(console, Encoding.UTF8.GetBytes("{\"capture_session_id\":\"" + h.Session.Id + "\",\"seq\":5,\"event\":{\"ts\":1,\"ty"));
        h.Reopen();
        Assert.Equal(4, h.Pipeline.LastSeq);
        Assert.Equal(5, h.Publish("{\"type\":\"console.z\"}").Envelope.Seq);
    }

    [Fact]
    public void Complete_json_without_its_newline_is_still_cut()
    {
        // Without the '\n' the write was not finished: the line is not trusted.
        using var h = Populate(2);
        string console = Path.Combine(h.Dir, "console.log");
        string line = h.Lines(EventCategory.Console)[0].Replace("\"seq\":1,", "\"seq\":3,", StringComparison.Ordinal);
        Append(console, Encoding.UTF8.GetBytes(line));
        h.Reopen();
        Assert.Equal(2, h.Pipeline.LastSeq);
        Assert.Single(h.Lines(EventCategory.Console));
    }

    [Theory]
    [InlineData(4096, false)]
    [InlineData(10, true)]
    [InlineData(100_000, true)]
    public void Zero_filled_tail_is_cut(int zeros, bool newlineAfter)
    {
        using var h = Populate(5);
        string console = Path.Combine(h.Dir, "console.log");
        byte[] good = File.ReadAllBytes(console);
        byte[] tail = new byte[zeros + (newlineAfter ? 1 : 0)];
        if (newlineAfter) tail[^1] = (byte)'\n';
        Append(console, tail);

        h.Reopen();
        Assert.Equal(good, File.ReadAllBytes(console));
        Assert.Equal(5, h.Pipeline.LastSeq);
        Assert.Equal(6, h.Publish("{\"type\":\"console.y\"}").Envelope.Seq);
        h.Pipeline.Dispose();
        Assert.Equal([1L, 3, 5, 6], h.Lines(EventCategory.Console).Select(Files.Seq));
    }

    [Fact]
    public void Garbage_lines_after_the_last_good_line_are_all_cut()
    {
        using var h = Populate(3);
        string console = Path.Combine(h.Dir, "console.log");
        byte[] good = File.ReadAllBytes(console);
        Append(console, Encoding.UTF8.GetBytes("not json\n{\"seq\":\"x\"}\n\n{\"seq\":0}\n\0\0\0"));
        h.Reopen();
        Assert.Equal(good, File.ReadAllBytes(console));
        Assert.Equal(3, h.Pipeline.LastSeq);
    }

    [Fact]
    public void File_holding_only_a_partial_line_becomes_empty()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("page.log"), "{\"capture_session_id\":\"a\",\"seq\":1,\"ev");
        var log = new List<string>();
        Assert.Equal(0, JsonlRecovery.RecoverLastSeq(dir.Path, log.Add));
        Assert.Equal(0, new FileInfo(dir.File("page.log")).Length);
        Assert.Single(log);
    }

    [Fact]
    public void Intact_files_are_not_touched_and_nothing_is_logged()
    {
        using var h = Populate(6);
        byte[] console = File.ReadAllBytes(Path.Combine(h.Dir, "console.log"));
        DateTime mtime = File.GetLastWriteTimeUtc(Path.Combine(h.Dir, "console.log"));
        h.Reopen();
        Assert.Equal(console, File.ReadAllBytes(Path.Combine(h.Dir, "console.log")));
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(Path.Combine(h.Dir, "console.log")));
        Assert.Empty(h.Log);
        Assert.Equal(6, h.Pipeline.LastSeq);
    }

    [Fact]
    public void Recovery_takes_the_highest_seq_over_all_categories_and_rotated_segments()
    {
        using var dir = new TempDir();
        static string Line(long seq) => "{\"capture_session_id\":\"s\",\"seq\":" + seq + ",\"event\":{\"ts\":1,\"type\":\"t\"}}\n";
        File.WriteAllText(dir.File("console.1.log"), Line(1) + Line(2) + Line(40));
        File.WriteAllText(dir.File("console.log"), Line(41));
        File.WriteAllText(dir.File("captcha.3.log"), Line(90) + "{\"capture_session_id\":\"s\",\"seq\":91");
        File.WriteAllText(dir.File("page.log"), "");
        File.WriteAllText(dir.File("notes.log"), Line(5000)); // not a category file
        var log = new List<string>();
        Assert.Equal(90, JsonlRecovery.RecoverLastSeq(dir.Path, log.Add));
        Assert.Equal(Line(90), File.ReadAllText(dir.File("captcha.3.log")));
        Assert.Single(log);
    }

    [Theory]
    [InlineData("{\"capture_session_id\":\"s\",\"seq\":17,\"event\":{}}", true, 17)]
    [InlineData("{\"seq\":17}", true, 17)]
    [InlineData("{\"seq\":17", false, 0)]
    [InlineData("{\"seq\":0}", false, 0)]
    [InlineData("{\"seq\":-3}", false, 0)]
    [InlineData("{\"seq\":\"17\"}", false, 0)]
    [InlineData("{\"a\":1}", false, 0)]
    [InlineData("[17]", false, 0)]
    [InlineData("{\"seq\":17} {}", false, 0)]
    [InlineData("", false, 0)]
    public void TryReadSeq_accepts_only_whole_envelopes(string line, bool ok, long seq)
    {
        Assert.Equal(ok, JsonlRecovery.TryReadSeq(Text.U8(line), out long got));
        if (ok) Assert.Equal(seq, got);
    }
}
