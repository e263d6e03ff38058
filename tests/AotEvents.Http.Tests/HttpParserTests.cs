using System.Text;
using AotEvents.Http.Server;

namespace AotEvents.Http.Tests;

/// <summary>The head parser, bytes in, parsed request out: no sockets.</summary>
public sealed class HttpParserTests
{
    private static (ParseStatus Status, HttpRequest Request, int HeadLength) Parse(string text, int maxHeadBytes = 16 * 1024)
    {
        byte[] bytes = Encoding.Latin1.GetBytes(text);
        HttpRequest request = new();
        ParseStatus status = HttpParser.TryParseHead(bytes, request, maxHeadBytes, out int headLength);
        request.Attach(bytes, 0, default);
        return (status, request, headLength);
    }

    [Fact]
    public void ParsesRequestLineHeadersAndQuery()
    {
        const string head = "POST /events/publish?ack=disk&x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type:  application/json \r\nContent-Length: 12\r\nX-Empty:\r\n\r\n";
        (ParseStatus status, HttpRequest request, int headLength) = Parse(head + "{\"type\":\"a\"}");

        Assert.Equal(ParseStatus.Complete, status);
        Assert.Equal(head.Length, headLength);
        Assert.Equal(HttpMethod.Post, request.Method);
        Assert.Equal("POST", Encoding.ASCII.GetString(request.RawMethod));
        Assert.Equal("/events/publish", Encoding.ASCII.GetString(request.Path));
        Assert.Equal("ack=disk&x=1", Encoding.ASCII.GetString(request.Query));
        Assert.Equal("/events/publish?ack=disk&x=1", Encoding.ASCII.GetString(request.Target));
        Assert.Equal("application/json", Encoding.ASCII.GetString(request.GetHeader("content-type"u8)));
        Assert.Equal("localhost", Encoding.ASCII.GetString(request.GetHeader("HOST"u8)));
        Assert.True(request.GetHeader("X-Empty"u8).IsEmpty);
        Assert.True(request.GetHeader("X-Absent"u8).IsEmpty);
        Assert.Equal(4, request.HeaderCount);
        Assert.Equal("Content-Length", Encoding.ASCII.GetString(request.GetHeaderName(2)));
        Assert.Equal("12", Encoding.ASCII.GetString(request.GetHeaderValue(2)));
        Assert.Equal(12, request._contentLength);
        Assert.True(request.IsHttp11);
        Assert.True(request.KeepAlive);
    }

    [Theory]
    [InlineData("GET", HttpMethod.Get)]
    [InlineData("POST", HttpMethod.Post)]
    [InlineData("PUT", HttpMethod.Put)]
    [InlineData("DELETE", HttpMethod.Delete)]
    [InlineData("HEAD", HttpMethod.Head)]
    [InlineData("OPTIONS", HttpMethod.Options)]
    [InlineData("PATCH", HttpMethod.Patch)]
    [InlineData("get", HttpMethod.Other)]
    [InlineData("PROPFIND", HttpMethod.Other)]
    public void MapsMethods(string method, HttpMethod expected)
    {
        (ParseStatus status, HttpRequest request, _) = Parse(method + " / HTTP/1.1\r\n\r\n");
        Assert.Equal(ParseStatus.Complete, status);
        Assert.Equal(expected, request.Method);
        Assert.Equal(method, Encoding.ASCII.GetString(request.RawMethod));
    }

    [Fact]
    public void HeadArrivingByteByByteIsIncompleteUntilTheBlankLine()
    {
        byte[] bytes = Encoding.ASCII.GetBytes("GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nrest");
        int headEnd = bytes.Length - 4;
        HttpRequest request = new();
        for (int length = 1; length < headEnd; length++)
        {
            Assert.Equal(ParseStatus.Incomplete, HttpParser.TryParseHead(bytes.AsSpan(0, length), request, 1024, out _));
        }
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParseHead(bytes.AsSpan(0, headEnd), request, 1024, out int headLength));
        Assert.Equal(headEnd, headLength);
        request.Attach(bytes, 0, default);
        Assert.Equal("/a", Encoding.ASCII.GetString(request.Path));
        Assert.Equal("*/*", Encoding.ASCII.GetString(request.GetHeader("accept"u8)));
    }

    [Fact]
    public void AcceptsBareLineFeeds()
    {
        (ParseStatus status, HttpRequest request, int headLength) = Parse("GET /x HTTP/1.1\nHost: y\n\n");
        Assert.Equal(ParseStatus.Complete, status);
        Assert.Equal(25, headLength);
        Assert.Equal("y", Encoding.ASCII.GetString(request.GetHeader("host"u8)));
    }

    [Theory]
    [InlineData("HELLO\r\n\r\n")]
    [InlineData("GET /\r\n\r\n")]
    [InlineData("GET  / HTTP/1.1\r\n\r\n")]
    [InlineData("GET / HTTP/1.1 \r\n\r\n")]
    [InlineData("GET / HTTX/1.1\r\n\r\n")]
    [InlineData("GET nopath HTTP/1.1\r\n\r\n")]
    [InlineData("G(T / HTTP/1.1\r\n\r\n")]
    [InlineData("GET /a\u0001b HTTP/1.1\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nHost : x\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nNoColon\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\n: empty-name\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nA: x\u0001y\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nA: x\ry\r\n\r\n")]
    [InlineData("POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n")]
    [InlineData("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")]
    [InlineData("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")]
    [InlineData("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")]
    [InlineData("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n")]
    [InlineData("\r\n\r\n")]
    public void RefusesMalformedHeads(string head)
    {
        Assert.Equal(ParseStatus.BadRequest, Parse(head).Status);
    }

    [Fact]
    public void SameContentLengthTwiceIsAccepted()
    {
        (ParseStatus status, HttpRequest request, _) = Parse("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
        Assert.Equal(ParseStatus.Complete, status);
        Assert.Equal(5, request._contentLength);
    }

    [Fact]
    public void OtherHttpVersionsAre505()
    {
        Assert.Equal(ParseStatus.VersionNotSupported, Parse("GET / HTTP/2.0\r\n\r\n").Status);
        Assert.Equal(ParseStatus.VersionNotSupported, Parse("PRI * HTTP/2.0\r\n\r\n").Status);
    }

    [Fact]
    public void UnsupportedTransferCodingIs501()
    {
        Assert.Equal(ParseStatus.NotImplemented, Parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").Status);
        (ParseStatus status, HttpRequest request, _) = Parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
        Assert.Equal(ParseStatus.Complete, status);
        Assert.True(request._chunked);
    }

    [Fact]
    public void HeadLimitGives431CompleteOrNot()
    {
        string big = "GET / HTTP/1.1\r\nX: " + new string('a', 2000) + "\r\n\r\n";
        Assert.Equal(ParseStatus.HeadersTooLarge, Parse(big, maxHeadBytes: 1024).Status);
        Assert.Equal(ParseStatus.HeadersTooLarge, Parse(big[..1500], maxHeadBytes: 1024).Status);
        Assert.Equal(ParseStatus.Incomplete, Parse(big[..1000], maxHeadBytes: 1024).Status);
        Assert.Equal(ParseStatus.Complete, Parse(big, maxHeadBytes: big.Length).Status);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n\r\n", true)]
    [InlineData("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.0\r\n\r\n", false)]
    [InlineData("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true)]
    public void KeepAliveFollowsVersionAndConnection(string head, bool keepAlive)
    {
        (ParseStatus status, HttpRequest request, _) = Parse(head);
        Assert.Equal(ParseStatus.Complete, status);
        Assert.Equal(keepAlive, request.KeepAlive);
    }

    [Fact]
    public void AbsoluteFormAndAsteriskTargets()
    {
        (_, HttpRequest request, _) = Parse("GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\n\r\n");
        Assert.Equal("/p/q", Encoding.ASCII.GetString(request.Path));
        Assert.Equal("x=1", Encoding.ASCII.GetString(request.Query));

        (_, request, _) = Parse("GET http://example.com HTTP/1.1\r\n\r\n");
        Assert.Equal("/", Encoding.ASCII.GetString(request.Path));
        Assert.True(request.Query.IsEmpty);

        (_, request, _) = Parse("OPTIONS * HTTP/1.1\r\n\r\n");
        Assert.Equal(HttpMethod.Options, request.Method);
        Assert.Equal("*", Encoding.ASCII.GetString(request.Path));
    }

    [Fact]
    public void ExpectContinueIsRecognised()
    {
        Assert.True(Parse("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").Request._expectContinue);
        Assert.False(Parse("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n").Request._expectContinue);
    }

    [Fact]
    public void RequestIsUnusableAfterDetach()
    {
        (_, HttpRequest request, _) = Parse("GET /x HTTP/1.1\r\nA: b\r\n\r\n");
        request.Detach();
        Assert.Equal(HttpMethod.Get, request.Method);
        Assert.Throws<InvalidOperationException>(() => request.Path.Length);
        Assert.Throws<InvalidOperationException>(() => request.GetHeader("A"u8).Length);
        Assert.Throws<InvalidOperationException>(() => request.Body);
    }

    [Fact]
    public void ManyHeadersGrowTheTable()
    {
        StringBuilder head = new("GET / HTTP/1.1\r\n");
        for (int i = 0; i < 100; i++)
        {
            head.Append("H").Append(i).Append(": v").Append(i).Append("\r\n");
        }
        (ParseStatus status, HttpRequest request, _) = Parse(head.Append("\r\n").ToString());
        Assert.Equal(ParseStatus.Complete, status);
        Assert.Equal(100, request.HeaderCount);
        Assert.Equal("v99", Encoding.ASCII.GetString(request.GetHeader("h99"u8)));
    }
}

public sealed class QueryTests
{
    private static HttpRequest WithQuery(string query)
    {
        byte[] bytes = Encoding.UTF8.GetBytes("GET /p?" + query + " HTTP/1.1\r\n\r\n");
        HttpRequest request = new();
        Assert.Equal(ParseStatus.Complete, HttpParser.TryParseHead(bytes, request, 4096, out _));
        request.Attach(bytes, 0, default);
        return request;
    }

    [Fact]
    public void DecodesPercentAndPlus()
    {
        HttpRequest request = WithQuery("category=console%2Cnetwork&q=a+b%20c&u=%C3%A9");
        Assert.True(request.TryGetQuery("category"u8, out string category));
        Assert.Equal("console,network", category);
        Assert.True(request.TryGetQuery("q"u8, out string q));
        Assert.Equal("a b c", q);
        Assert.True(request.TryGetQuery("u"u8, out string u));
        Assert.Equal("é", u);
    }

    [Fact]
    public void FirstMatchEmptyValuesAndAbsence()
    {
        HttpRequest request = WithQuery("a=1&a=2&flag&empty=&&b=x");
        Assert.True(request.TryGetQuery("a"u8, out string a));
        Assert.Equal("1", a);
        Assert.True(request.TryGetQuery("flag"u8, out string flag));
        Assert.Equal("", flag);
        Assert.True(request.TryGetQuery("empty"u8, out string empty));
        Assert.Equal("", empty);
        Assert.True(request.TryGetQuery("b"u8, out string b));
        Assert.Equal("x", b);
        Assert.False(request.TryGetQuery("missing"u8, out string missing));
        Assert.Equal("", missing);
        Assert.False(request.TryGetQuery("fla"u8, out _));
    }

    [Fact]
    public void EncodedNamesAndMalformedEscapes()
    {
        HttpRequest request = WithQuery("after%5Fseq=5&bad=%zz%4&last=%");
        Assert.True(request.TryGetQuery("after_seq"u8, out string after));
        Assert.Equal("5", after);
        Assert.True(request.TryGetQuery("bad"u8, out string bad));
        Assert.Equal("%zz%4", bad);
        Assert.True(request.TryGetQuery("last"u8, out string last));
        Assert.Equal("%", last);
        Assert.True(request.TryGetQueryRaw("after_seq"u8, out ReadOnlySpan<byte> raw));
        Assert.Equal("5", Encoding.ASCII.GetString(raw));
    }

    [Fact]
    public void LongValuesDecode()
    {
        string value = new('x', 1000);
        HttpRequest request = WithQuery("v=" + value + "%21");
        Assert.True(request.TryGetQuery("v"u8, out string decoded));
        Assert.Equal(value + "!", decoded);
    }
}
