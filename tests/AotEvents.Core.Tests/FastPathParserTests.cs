using System.Text;
using AotEvents.Events;

namespace AotEvents.Core.Tests;

/// <summary>
/// The parser's fast path against its <c>Utf8JsonReader</c> path: whenever the fast path accepts, the reader path
/// must accept too and produce the same envelope bytes and draft fields. Inputs: hand-picked shapes plus a seeded
/// mutation corpus (deleted, inserted, replaced and repeated bytes) of typical events.
/// </summary>
public sealed class FastPathParserTests
{
    private const long Now = 1_700_000_000_000_000;

    private static readonly string[] Seeds =
    [
        """{"type":"console.log","category":"console","detail_level":"standard","source":{"kind":"extension","event":"Runtime.consoleAPICalled","metadata":{"target_id":"T1"}},"url":"https://shop.example.com/checkout?step=2","data":{"level":"info","args":["cart updated",{"items":3,"total":"59.90"}],"stack":"at updateCart (app.js:120:14)"}}""",
        """ { "ts" : 1700000000000001 , "type" : "page.load" , "data" : [ 1, -2.5e+3, 0.0, true, false, null, "a\"b\\c\/\n\u00e9" ] } """,
        """{"type":"network.request","source":{"kind":"local_process","event":"fetch","metadata":{"a":"1","b\u0041":"x\ty"}},"url":"http://a/\u00e9","data":{"nested":{"deeper":{"list":[[],{},[{}]]}}}}""",
        """{"type":"x","seq":99,"unknown":{"a":[1,2,{"b":null}]},"data":null}""",
        """{"type":"interaction.click","category":"interaction","detail_level":"verbose","ts":0,"data":"plain string"}""",
        """{"type":"a\"b","data":1}""",
        """{"type":"liveview.frame","data":{"emoji":"😀","cjk":"漢字","escaped":"\ud83d\ude00"}}""",
        "{\"type\":\"t\",\r\n\t\"data\":{\r\n\t\"k\" : [ 1 ,2 ]\r\n}}",
    ];

    [Theory]
    [InlineData("""{"type":"console.log","data":{"a":1}}""")]
    [InlineData(""" {"type":"x"} """)]
    [InlineData("""{"type":"x","source":{"kind":"extension"},"url":"u"}""")]
    [InlineData("""{"ts":5,"type":"x","data":[1,2,3]}""")]
    public void Typical_events_take_the_fast_path(string input)
    {
        using var drafts = new EventDrafts();
        Assert.True(EventParser.TryParseFast(Encoding.UTF8.GetBytes(input), Now, DetailLevel.Standard, drafts, 1));
        Assert.Equal(1, drafts.Count);
    }

    [Theory]
    [InlineData("""{"type":null,"data":1}""")]                       // null field
    [InlineData("""{"type":"\u0041"}""")]                            // escaped type
    [InlineData("""{"\u0074ype":"x"}""")]                            // escaped name
    [InlineData("""{"type":"x","ts":1.5}""")]                        // ts not a plain integer
    [InlineData("""{"type":"x","data":"\ud800"}""")]                 // surrogate escape
    [InlineData("""{"type":"x","source":{"kind":"cdp"}}""")]         // refused
    [InlineData("""{"type":"x","category":"nope"}""")]               // refused
    [InlineData("""{"type":"x","data":01}""")]                       // invalid number
    [InlineData("""{"type":"x",}""")]                                // trailing comma
    [InlineData("""{"type":"x"} x""")]                               // content after the object
    [InlineData("""{"type":"x","data":1,"data":2}""")]               // duplicate data
    public void Unusual_or_refused_input_is_left_to_the_reader_path(string input)
    {
        using var drafts = new EventDrafts();
        Assert.False(EventParser.TryParseFast(Encoding.UTF8.GetBytes(input), Now, DetailLevel.Standard, drafts, 1));
        Assert.Equal(0, drafts.Count);
    }

    [Fact]
    public void Nesting_deeper_than_the_fast_path_goes_is_left_to_the_reader_path()
    {
        string deep = "{\"type\":\"x\",\"data\":" + new string('[', 100) + new string(']', 100) + "}";
        using var drafts = new EventDrafts();
        Assert.False(EventParser.TryParseFast(Encoding.UTF8.GetBytes(deep), Now, DetailLevel.Standard, drafts, 1));
        Assert.True(EventParser.TryParse(Encoding.UTF8.GetBytes(deep), Now, DetailLevel.Standard, drafts, 1, out _));
    }

    [Fact]
    public void Every_seed_is_valid_and_the_plain_ones_get_the_same_bytes_from_both_paths()
    {
        var verdicts = Seeds.Select(seed => Compare(Encoding.UTF8.GetBytes(seed))).ToArray();
        Assert.DoesNotContain(Verdict.BothRefused, verdicts);
        // Seeds 5 (escaped type) and 6 (a surrogate pair escape) are the reader's; the rest are the fast path's.
        Assert.Equal([0, 1, 2, 3, 4, 7], Enumerable.Range(0, Seeds.Length).Where(i => verdicts[i] == Verdict.SameAcceptance));
    }

    [Fact]
    public void Mutated_events_never_get_a_different_answer_from_the_fast_path()
    {
        var random = new Random(20261121);
        const string Alphabet = "{}[]\":,\\ \t\n0123456789-+.eEtrufalsn\u007fxyz/bu";
        int fastAccepted = 0, readerOnly = 0, bothRefused = 0;
        for (int n = 0; n < 60_000; n++)
        {
            byte[] input = Encoding.UTF8.GetBytes(Seeds[random.Next(Seeds.Length)]);
            var bytes = new List<byte>(input);
            int mutations = 1 + random.Next(3);
            for (int m = 0; m < mutations && bytes.Count > 0; m++)
            {
                int at = random.Next(bytes.Count);
                switch (random.Next(4))
                {
                    case 0: bytes.RemoveAt(at); break;
                    case 1: bytes.Insert(at, (byte)Alphabet[random.Next(Alphabet.Length)]); break;
                    case 2: bytes[at] = (byte)Alphabet[random.Next(Alphabet.Length)]; break;
                    default:
                        int length = Math.Min(1 + random.Next(12), bytes.Count - at);
                        bytes.InsertRange(at, bytes.GetRange(at, length));
                        break;
                }
            }
            byte[] mutated = [.. bytes];
            if (!System.Text.Unicode.Utf8.IsValid(mutated))
            {
                continue; // both paths sit behind the same UTF-8 check
            }
            switch (Compare(mutated))
            {
                case Verdict.SameAcceptance: fastAccepted++; break;
                case Verdict.ReaderOnly: readerOnly++; break;
                default: bothRefused++; break;
            }
        }
        // The corpus must exercise all three outcomes, or the comparison proves little.
        Assert.True(fastAccepted > 5_000, $"fast path accepted only {fastAccepted}");
        Assert.True(readerOnly > 100, $"reader-only accepted {readerOnly}");
        Assert.True(bothRefused > 10_000, $"both refused {bothRefused}");
    }

    private enum Verdict { SameAcceptance, ReaderOnly, BothRefused }

    /// <summary>Fails the test when the fast path accepts something the reader path refuses or words differently.</summary>
    private static Verdict Compare(byte[] input)
    {
        using var fast = new EventDrafts();
        using var reader = new EventDrafts();
        bool fastOk = EventParser.TryParseFast(input, Now, DetailLevel.Standard, fast, 7);
        bool readerOk = EventParser.TryParseWithReader(input, Now, DetailLevel.Standard, reader, 7, out string? error);
        string shown = Encoding.UTF8.GetString(input);
        if (!fastOk)
        {
            Assert.Equal(0, fast.Count);
            return readerOk ? Verdict.ReaderOnly : Verdict.BothRefused;
        }
        Assert.True(readerOk, $"fast path accepted what the reader refuses ({error}): {shown}");
        EventDraft a = fast[0], b = reader[0];
        Assert.Equal(Encoding.UTF8.GetString(reader.EventJson(b)), Encoding.UTF8.GetString(fast.EventJson(a)));
        Assert.Equal((b.TypeStart, b.TypeLength, b.DataFieldStart, b.Category, b.SourceKind, b.LineNumber),
            (a.TypeStart, a.TypeLength, a.DataFieldStart, a.Category, a.SourceKind, a.LineNumber));
        return Verdict.SameAcceptance;
    }
}
