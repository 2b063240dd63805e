using System.Text;
using Tunnel2.Client.Forwarding.Http1;

namespace Tunnel2.Tests.Client.Forwarding.Http1;

/// <summary>Response body framing (RFC 9112 §6.3) and connection reuse (§9.3), as a table from response heads.</summary>
public sealed class Http1ResponseFramingTests
{
    [Theory]
    // head (fields only)                                    status http10 HEAD  kind            length keepAlive
    [InlineData("Content-Length: 5", 200, false, false, "ContentLength", 5L, true)]
    [InlineData("Content-Length: 0", 200, false, false, "None", 0L, true)]
    [InlineData("Content-Length: 5, 5", 200, false, false, "ContentLength", 5L, true)]
    [InlineData("Content-Length: 5|Content-Length: 5", 200, false, false, "ContentLength", 5L, true)]
    [InlineData("Transfer-Encoding: chunked", 200, false, false, "Chunked", -1L, true)]
    [InlineData("Transfer-Encoding: gzip, CHUNKED", 200, false, false, "Chunked", -1L, true)]
    [InlineData("Transfer-Encoding: gzip|Transfer-Encoding: chunked", 200, false, false, "Chunked", -1L, true)]
    [InlineData("Transfer-Encoding: chunked, gzip", 200, false, false, "UntilClose", -1L, false)]
    [InlineData("Transfer-Encoding: chunked|Content-Length: 5", 200, false, false, "Chunked", -1L, false)]
    [InlineData("", 200, false, false, "UntilClose", -1L, false)]
    [InlineData("Content-Length: 5|Connection: close", 200, false, false, "ContentLength", 5L, false)]
    [InlineData("Content-Length: 5|Connection: Upgrade, Close", 200, false, false, "ContentLength", 5L, false)]
    [InlineData("Content-Length: 5", 200, true, false, "ContentLength", 5L, false)]
    [InlineData("Content-Length: 5|Connection: keep-alive", 200, true, false, "ContentLength", 5L, true)]
    [InlineData("Transfer-Encoding: chunked|Connection: keep-alive", 200, true, false, "Chunked", -1L, false)]
    [InlineData("Content-Length: 5", 200, false, true, "None", 5L, true)]
    [InlineData("Transfer-Encoding: chunked", 200, false, true, "None", -1L, true)]
    [InlineData("", 204, false, false, "None", -1L, true)]
    [InlineData("Content-Length: 10", 304, false, false, "None", 10L, true)]
    [InlineData("", 304, false, false, "None", -1L, true)]
    public void Decide_Table(string fields, int status, bool http10, bool requestWasHead, string kind, long forwardedLength, bool keepAlive)
    {
        var framing = Decide(fields, status, http10, requestWasHead);

        Assert.Null(framing.Error);
        Assert.Equal(kind, framing.Kind.ToString());
        Assert.Equal(forwardedLength, framing.ForwardedLength);
        Assert.Equal(keepAlive, framing.KeepAlive);
        if (framing.Kind == ResponseBodyKind.ContentLength)
        {
            Assert.Equal(forwardedLength, framing.Length);
        }
    }

    [Theory]
    [InlineData("Content-Length: 2|Content-Length: 3", "conflicting")]
    [InlineData("Content-Length: 2, 3", "conflicting")]
    [InlineData("Content-Length: 12abc", "not a number")]
    [InlineData("Content-Length: -1", "not a number")]
    [InlineData("Content-Length: +5", "not a number")]
    [InlineData("Content-Length:", "not a number")]
    [InlineData("Content-Length: 5,", "not a number")]
    [InlineData("Content-Length: 99999999999999999999", "not a number")]
    public void Decide_BadContentLength_Error(string fields, string expected)
    {
        foreach (var status in new[] { 200, 204, 304 })
        {
            var framing = Decide(fields, status, http10: false, requestWasHead: false);

            Assert.Contains(expected, framing.Error, StringComparison.Ordinal);
        }
    }

    internal static ResponseFraming Decide(string fields, int status, bool http10, bool requestWasHead)
    {
        var text = $"HTTP/1.{(http10 ? 0 : 1)} {status} X\r\n" + string.Concat(fields.Split('|', StringSplitOptions.RemoveEmptyEntries).Select(f => f + "\r\n")) + "\r\n";
        var head = Encoding.Latin1.GetBytes(text);
        var parser = default(Http1HeadParser);
        var ranges = new FieldRange[8];
        Assert.Equal(HeadParseStatus.Done, parser.Parse(head, 64 * 1024, ref ranges));

        return Http1ResponseFraming.Decide(parser.StatusCode, parser.IsHttp10, requestWasHead, Http1ResponseFraming.Scan(head, ranges.AsSpan(0, parser.FieldCount)));
    }
}
