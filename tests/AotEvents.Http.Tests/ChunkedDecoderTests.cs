using System.Text;
using AotEvents.Http.Server;

namespace AotEvents.Http.Tests;

/// <summary>The chunked body decoder, bytes in, body out.</summary>
public sealed class ChunkedDecoderTests
{
    private static (ChunkStatus Status, string Body, int Consumed) DecodeAll(string input, long maxBody = 1 << 20, int maxTrailer = 1024)
    {
        BufferPool pool = new(4);
        BodyBuffer body = new(pool);
        ChunkedDecoder decoder = default;
        byte[] bytes = Encoding.Latin1.GetBytes(input);
        ChunkStatus status = decoder.Decode(bytes, ref body, maxBody, maxTrailer, out int consumed);
        string text = Encoding.Latin1.GetString(body.Memory.Span);
        body.Release();
        Assert.Equal(0, pool.Outstanding);
        return (status, text, consumed);
    }

    /// <summary>Feeds one byte more each time, keeping what the decoder did not consume, as the connection does.</summary>
    private static (ChunkStatus Status, string Body, int Consumed) DecodeByteByByte(string input)
    {
        BufferPool pool = new(4);
        BodyBuffer body = new(pool);
        ChunkedDecoder decoder = default;
        byte[] bytes = Encoding.Latin1.GetBytes(input);
        int position = 0;
        ChunkStatus status = ChunkStatus.NeedMore;
        for (int available = 1; available <= bytes.Length; available++)
        {
            status = decoder.Decode(bytes.AsSpan(position, available - position), ref body, 1 << 20, 1024, out int consumed);
            position += consumed;
            if (status != ChunkStatus.NeedMore)
            {
                break;
            }
        }
        string text = Encoding.Latin1.GetString(body.Memory.Span);
        body.Release();
        return (status, text, position);
    }

    [Fact]
    public void DecodesChunksAndStopsAtTheEnd()
    {
        const string encoded = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        (ChunkStatus status, string body, int consumed) = DecodeAll(encoded + "GET / HTTP/1.1");
        Assert.Equal(ChunkStatus.Done, status);
        Assert.Equal("hello world", body);
        Assert.Equal(encoded.Length, consumed);
    }

    [Fact]
    public void SkipsExtensionsAndTrailers()
    {
        const string encoded = "5;name=value;flag\r\nhello\r\nA ; x=\"y\"\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
        (ChunkStatus status, string body, int consumed) = DecodeAll(encoded);
        Assert.Equal(ChunkStatus.Done, status);
        Assert.Equal("hello0123456789", body);
        Assert.Equal(encoded.Length, consumed);
    }

    [Fact]
    public void SameResultWhenBytesArriveOneAtATime()
    {
        const string encoded = "3;e=1\r\nabc\r\n10\r\n0123456789abcdef\r\n1\nZ\n0\r\nT: v\r\n\r\n";
        (ChunkStatus status, string body, int consumed) = DecodeByteByByte(encoded);
        Assert.Equal(ChunkStatus.Done, status);
        Assert.Equal("abc0123456789abcdefZ", body);
        Assert.Equal(encoded.Length, consumed);
    }

    [Theory]
    [InlineData("zz\r\nhello\r\n0\r\n\r\n")]
    [InlineData("\r\n")]
    [InlineData("5\r\nhelloXX0\r\n\r\n")]
    [InlineData("5 junk\r\nhello\r\n0\r\n\r\n")]
    [InlineData("0\r\nnot a field\r\n\r\n")]
    [InlineData("0\r\nBad Name: x\r\n\r\n")]
    public void RefusesMalformedFraming(string input)
    {
        Assert.Equal(ChunkStatus.BadRequest, DecodeAll(input).Status);
    }

    [Fact]
    public void EnforcesTheBodyLimitOnSizesAndSums()
    {
        Assert.Equal(ChunkStatus.TooLarge, DecodeAll("801\r\n", maxBody: 2048).Status);
        Assert.Equal(ChunkStatus.TooLarge, DecodeAll("ffffffffffffffffffffff\r\n", maxBody: 2048).Status);
        string two = "400\r\n" + new string('a', 1024) + "\r\n401\r\n";
        Assert.Equal(ChunkStatus.TooLarge, DecodeAll(two, maxBody: 2048).Status);
        string exact = "400\r\n" + new string('a', 1024) + "\r\n400\r\n" + new string('b', 1024) + "\r\n0\r\n\r\n";
        (ChunkStatus status, string body, _) = DecodeAll(exact, maxBody: 2048);
        Assert.Equal(ChunkStatus.Done, status);
        Assert.Equal(2048, body.Length);
    }

    [Fact]
    public void LimitsSizeLineAndTrailers()
    {
        Assert.Equal(ChunkStatus.BadRequest, DecodeAll("5;" + new string('x', ChunkedDecoder.MaxSizeLineLength + 10)).Status);
        Assert.Equal(ChunkStatus.TrailersTooLarge, DecodeAll("0\r\nX: " + new string('y', 2000) + "\r\n\r\n", maxTrailer: 1024).Status);
        Assert.Equal(ChunkStatus.TrailersTooLarge, DecodeAll("0\r\nX: " + new string('y', 2000), maxTrailer: 1024).Status);
    }

    [Fact]
    public void IncompleteInputAsksForMore()
    {
        (ChunkStatus status, string body, int consumed) = DecodeAll("5\r\nhel");
        Assert.Equal(ChunkStatus.NeedMore, status);
        Assert.Equal("hel", body);
        Assert.Equal(6, consumed);
        Assert.Equal(ChunkStatus.NeedMore, DecodeAll("5\r\nhello\r").Status);
        Assert.Equal(ChunkStatus.NeedMore, DecodeAll("0\r\nX: 1\r\n").Status);
    }
}
