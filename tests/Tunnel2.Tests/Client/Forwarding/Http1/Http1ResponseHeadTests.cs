using System.Text;
using Tunnel2.Client.Forwarding.Http1;
using Tunnel2.Protocol;
using Tunnel2.Tests.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Client.Forwarding.Http1;

/// <summary>The tunnel's response head written from a parsed backend head, as the HttpClient path writes it.</summary>
public sealed class Http1ResponseHeadTests
{
    [Fact]
    public void HopByHopAndNominatedDropped_ContentLengthNormalised_BackendTimeAdded()
    {
        var block = Write(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Hop\r\nX-Hop: h\r\nKeep-Alive: timeout=5\r\n"
            + "Content-Length: 5, 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Kept: k\r\n\r\n",
            contentLength: 5,
            TimeSpan.FromMilliseconds(1.5));

        var decoded = HeaderBlockTestData.Decode(block);

        Assert.Equal(200, decoded.Status);
        Assert.Equal(
            ["Content-Type: text/plain", "Set-Cookie: a=1", "Set-Cookie: b=2", "X-Kept: k", "Content-Length: 5", $"{UplinkHandshake.BackendTimeField}: 1500"],
            decoded.Fields.Select(f => $"{f.Name}: {f.ValueText}"));
    }

    [Fact]
    public void ChunkedResponse_NoContentLength_NoTransferEncoding()
    {
        var block = Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nContent-Length: 9\r\n\r\n", contentLength: -1, backendTime: null);

        Assert.Empty(HeaderBlockTestData.Decode(block).Fields);
    }

    [Fact]
    public void FieldWithControlCharacter_Skipped_OthersKept()
    {
        var block = Write("HTTP/1.1 404 Not Found\r\nX-Bad: a\u0001b\r\nX-Good: g\r\n\r\n", contentLength: -1, backendTime: null);

        var decoded = HeaderBlockTestData.Decode(block);

        Assert.Equal(404, decoded.Status);
        Assert.Equal(["X-Good: g"], decoded.Fields.Select(f => $"{f.Name}: {f.ValueText}"));
    }

    [Fact]
    public void TooSmallForTheHead_Minus1()
    {
        var head = Encoding.Latin1.GetBytes("HTTP/1.1 200 OK\r\nX-Long: " + new string('l', 100) + "\r\n\r\n");
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[4];
        Assert.Equal(HeadParseStatus.Done, parser.Parse(head, 4096, ref fields));

        Assert.Equal(-1, Http1BackendHop.WriteResponseHead(new byte[64], 200, head, fields.AsSpan(0, parser.FieldCount), -1, null));
    }

    private static byte[] Write(string text, long contentLength, TimeSpan? backendTime)
    {
        var head = Encoding.Latin1.GetBytes(text);
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[16];
        Assert.Equal(HeadParseStatus.Done, parser.Parse(head, 4096, ref fields));
        var buffer = new byte[4096];

        var length = Http1BackendHop.WriteResponseHead(buffer, parser.StatusCode, head, fields.AsSpan(0, parser.FieldCount), contentLength, backendTime);

        Assert.True(length > 0);
        return buffer.AsSpan(0, length).ToArray();
    }
}
