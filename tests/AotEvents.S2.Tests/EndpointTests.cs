namespace AotEvents.S2.Tests;

/// <summary>URL and header composition: SPEC §6 S2_ENDPOINT and the official SDKs' endpoint rules.</summary>
public class EndpointTests
{
    private static S2Endpoint Resolve(string? endpoint, bool? header = null, string basin = "my-basin-1")
        => S2Endpoint.Resolve(new S2Options { Basin = basin, AccessToken = "t", Endpoint = endpoint, SendBasinHeader = header });

    [Fact]
    public void Default_endpoint_puts_the_basin_in_the_host_and_sends_no_basin_header()
    {
        S2Endpoint e = Resolve(null);
        Assert.Equal("https://my-basin-1.b.s2.dev/v1", e.BaseUrl);
        Assert.Null(e.BasinHeader);
        Assert.Equal("https://my-basin-1.b.s2.dev/v1/streams/abc/records", e.StreamUrl("abc", "/records"));
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1")]
    [InlineData("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1")]
    [InlineData("  http://localhost:8080  ", "http://localhost:8080/v1")]
    [InlineData("localhost:8080", "https://localhost:8080/v1")]
    [InlineData("http://emulator:9000/s2/v1", "http://emulator:9000/s2/v1")]
    [InlineData("http://emulator:9000/api/", "http://emulator:9000/api")]
    [InlineData("HTTP://127.0.0.1:8080", "http://127.0.0.1:8080/v1")]
    public void Custom_endpoint_keeps_host_defaults_the_path_and_sends_the_basin_header(string endpoint, string expected)
    {
        S2Endpoint e = Resolve(endpoint);
        Assert.Equal(expected, e.BaseUrl);
        Assert.Equal("my-basin-1", e.BasinHeader);
    }

    [Fact]
    public void Basin_placeholder_is_substituted_in_host_and_path()
    {
        Assert.Equal("http://my-basin-1.b.local:1234/v1", Resolve("http://{basin}.b.local:1234").BaseUrl);
        Assert.Equal("http://gw/basins/my-basin-1/v1", Resolve("http://gw/basins/{basin}/v1").BaseUrl);
    }

    [Fact]
    public void Basin_header_rule_can_be_overridden()
    {
        Assert.Null(Resolve("http://{basin}.b.local:1234", header: false).BasinHeader);
        Assert.Equal("my-basin-1", Resolve(null, header: true).BasinHeader);
    }

    [Theory]
    [InlineData("ftp://127.0.0.1:8080")]
    [InlineData("http://127.0.0.1:8080?x=1")]
    [InlineData("http://127.0.0.1:8080#frag")]
    [InlineData("http://")]
    public void Bad_endpoints_are_refused(string endpoint)
        => Assert.Throws<ArgumentException>(() => Resolve(endpoint));

    [Fact]
    public void Empty_basin_is_refused()
        => Assert.Throws<ArgumentException>(() => Resolve(null, basin: " "));

    [Fact]
    public void Stream_names_are_percent_encoded_in_the_path()
        => Assert.Equal("http://h/v1/streams/a%2Fb%20c/records/tail", Resolve("http://h").StreamUrl("a/b c", "/records/tail"));

    [Theory]
    [InlineData(S2ReadFrom.SeqNum, 5L, null, null, null, false, "?seq_num=5")]
    [InlineData(S2ReadFrom.Timestamp, 1700000000000L, 10, null, null, false, "?timestamp=1700000000000&count=10")]
    [InlineData(S2ReadFrom.TailOffset, 3L, 10, 4096, 1800000000000L, true, "?tail_offset=3&count=10&bytes=4096&until=1800000000000&clamp=true")]
    [InlineData(S2ReadFrom.SeqNum, 0L, null, 100, null, true, "?seq_num=0&bytes=100&clamp=true")]
    public void Read_query_carries_start_limits_until_and_clamp(S2ReadFrom from, long value, int? count, int? bytes, long? until, bool clamp, string query)
    {
        string url = S2Client.BuildReadUrl(Resolve("http://h:1"), "s", new S2ReadStart(from, value), count, bytes, until, clamp);
        Assert.Equal("http://h:1/v1/streams/s/records" + query, url);
    }
}
