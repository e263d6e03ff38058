using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using AotEvents.Diagnostics;

namespace AotEvents.Core.Tests;

/// <summary><see cref="JsonEscaper"/> must escape exactly like <see cref="JavaScriptEncoder.Default"/>.</summary>
public sealed class JsonEscaperTests
{
    [Fact]
    public void Every_unicode_scalar_is_escaped_as_the_default_encoder_does()
    {
        var text = new StringBuilder();
        for (int scalar = 0; scalar <= 0x10FFFF; scalar++)
        {
            if (scalar is >= 0xD800 and <= 0xDFFF) continue;
            string s = char.ConvertFromUtf32(scalar);
            Assert.Equal(JavaScriptEncoder.Default.WillEncode(scalar), JsonEscaper.Instance.WillEncode(scalar));
            if (scalar < 0x800 || scalar % 97 == 0) text.Append(s).Append('x');
            if (scalar < 0x3000 || scalar % 31 == 0)
                Assert.Equal(JavaScriptEncoder.Default.Encode(s), JsonEscaper.Instance.Encode(s));
        }
        string all = text.ToString();
        Assert.Equal(JavaScriptEncoder.Default.Encode(all), JsonEscaper.Instance.Encode(all));
        Assert.Equal(Write(Encoding.UTF8.GetBytes(all), null), Write(Encoding.UTF8.GetBytes(all), JsonEscaper.Instance));
    }

    [Theory]
    [InlineData("plain ascii / slashes ~ and {braces}")]
    [InlineData("quote \" backslash \\ amp & apos ' plus + lt < gt > tick `")]
    [InlineData("\b\t\n\f\r\0\u001f\u007f")]
    [InlineData("é ✓ 日本 😀 \u2028\u2029 \ufeff \uffff")]
    [InlineData("lone \ud800 high, lone \udc00 low, reversed \udc00\ud800")]
    public void Strings_and_utf8_are_written_as_with_the_default_encoder(string value)
    {
        Assert.Equal(Write(value, null), Write(value, JsonEscaper.Instance));
        byte[] utf8 = Encoding.UTF8.GetBytes(value);
        Assert.Equal(Write(utf8, null), Write(utf8, JsonEscaper.Instance));
    }

    [Fact]
    public void Invalid_utf8_is_written_as_with_the_default_encoder()
    {
        byte[] bad = [(byte)'a', 0xC3, (byte)'b', 0xFF, 0xED, 0xA0, 0x80, 0xF0, 0x9F, 0x98, (byte)'"'];
        Assert.Equal(Write(bad, null), Write(bad, JsonEscaper.Instance));
    }

    private static string Write(string value, JavaScriptEncoder? encoder)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = encoder }))
        {
            json.WriteStartObject();
            json.WriteString("v", value);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string Write(byte[] utf8, JavaScriptEncoder? encoder)
    {
        var buffer = new ArrayBufferWriter<byte>();
        try
        {
            using var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = encoder });
            json.WriteStartObject();
            json.WriteString("v"u8, utf8);
            json.WriteEndObject();
        }
        catch (ArgumentException e)
        {
            return "throws " + e.GetType().Name;
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
