using System.Text;
using Microsoft.Extensions.Options;
using Tunnel2.Client;
using Tunnel2.Client.Forwarding;
using Tunnel2.Client.Forwarding.Http1;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Client.Forwarding.Http1;

/// <summary>The backend request head written from a tunnel request head, byte for byte.</summary>
public sealed class Http1RequestWriterTests
{
    private static readonly BackendRoutes s_routes = CreateRoutes();

    [Fact]
    public void Get_NoBody_HostFirst_NoFraming()
    {
        var head = Write("GET", "/loadtest/get?x=1", hasBody: false, ("Accept", "*/*"), ("User-Agent", "test"), ("X-Forwarded-For", "1.2.3.4"));

        Assert.Equal(
            "GET /loadtest/get?x=1 HTTP/1.1\r\nHost: 127.0.0.1:12007\r\nAccept: */*\r\nUser-Agent: test\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
            head);
    }

    [Fact]
    public void Post_WithLength_ContentLengthReframed()
    {
        var head = Write("POST", "/api/items", hasBody: true, ("Content-Type", "application/json"), ("content-length", "12"));

        Assert.Equal(
            "POST /base/api/items HTTP/1.1\r\nHost: backend.example\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n",
            head);
    }

    [Fact]
    public void Put_UnknownLength_Chunked()
    {
        var head = Write("PUT", "/upload", hasBody: true, ("X-Id", "7"));

        Assert.Equal("PUT /upload HTTP/1.1\r\nHost: 127.0.0.1:12005\r\nX-Id: 7\r\nTransfer-Encoding: chunked\r\n\r\n", head);
    }

    [Theory]
    [InlineData("POST", "")]
    [InlineData("PATCH", "")]
    [InlineData("PROPFIND", "")]
    [InlineData("GET", null)]
    [InlineData("DELETE", null)]
    [InlineData("OPTIONS", null)]
    public void NoBody_ContentLengthZero_ForMethodsThatExpectContent(string method, string? expected)
    {
        var head = Write(method, "/x", hasBody: false);

        Assert.Equal(expected is null ? string.Empty : "Content-Length: 0\r\n", Framing(head));
    }

    [Fact]
    public void NoBody_ContentFieldOrLength_ContentLengthZero()
    {
        Assert.Equal("Content-Length: 0\r\n", Framing(Write("GET", "/x", hasBody: false, ("Content-Type", "text/plain"))));
        Assert.Equal("Content-Length: 0\r\n", Framing(Write("GET", "/x", hasBody: false, ("Content-Length", "0"))));
    }

    [Fact]
    public void HopByHopAndHost_Dropped()
    {
        var head = Write(
            "GET",
            "/x",
            hasBody: false,
            ("Host", "public.example"),
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"),
            ("Proxy-Authorization", "secret"),
            ("Upgrade", "h2c"),
            ("x-kept", "k"));

        Assert.Equal("GET /x HTTP/1.1\r\nHost: 127.0.0.1:12005\r\nx-kept: k\r\n\r\n", head);
    }

    [Fact]
    public void Cookies_JoinedIntoOneField()
    {
        var head = Write("GET", "/x", hasBody: false, ("Cookie", "a=1"), ("X-Other", "o"), ("cookie", "b=2"));

        Assert.Equal("GET /x HTTP/1.1\r\nHost: 127.0.0.1:12005\r\nX-Other: o\r\nCookie: a=1; b=2\r\n\r\n", head);
    }

    [Fact]
    public void Target_ForwardedByteForByte_SpaceAndHighBytesEscaped()
    {
        Assert.StartsWith("GET /a%2Fb/..%5C/%zz?q=%00 HTTP/1.1\r\n", Write("GET", "/a%2Fb/..%5C/%zz?q=%00", hasBody: false), StringComparison.Ordinal);
        Assert.StartsWith("GET /a\\b HTTP/1.1\r\n", Write("GET", "/a\\b", hasBody: false), StringComparison.Ordinal);
        Assert.StartsWith("GET /a%20b/%E9 HTTP/1.1\r\n", Write("GET", "/a b/\u00e9", hasBody: false), StringComparison.Ordinal);
    }

    [Fact]
    public void ObsTextValue_PassesThroughAsLatin1()
    {
        var head = Write("GET", "/x", hasBody: false, ("X-Name", "caf\u00e9"));

        Assert.Contains("X-Name: caf\u00e9\r\n", head, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CONNECT", "/service", null, null)]
    [InlineData("GET", "/secure/x", null, null)]
    [InlineData("GET", "/ws", "Upgrade", "websocket")]
    [InlineData("POST", "/grpc.Service/Call", "Content-Type", "application/grpc+proto")]
    [InlineData("POST", "/grpc.Service/Call", "content-type", "Application/GRPC")]
    public void ServedByHttpClient(string method, string target, string? name, string? value)
    {
        var writer = Run(method, target, hasBody: true, name is null ? [] : [(name, value!)]);

        Assert.True(writer.NeedsHttpClient);
        Assert.Null(writer.Error);
    }

    [Theory]
    [InlineData("Content-Length", "12abc")]
    [InlineData("Content-Length", "-1")]
    public void BadContentLength_Error(string name, string value)
    {
        var writer = Run("POST", "/x", hasBody: true, [(name, value)]);

        Assert.Equal("The request Content-Length is not a number.", writer.Error);
    }

    [Fact]
    public void HugeHead_Overflows_RetrySizeHoldsIt()
    {
        var fields = Enumerable.Range(0, 200).Select(i => ("Accept", new string('a', 20))).ToArray();
        var block = Block("GET", "/x", fields);
        var small = new Http1RequestWriter(s_routes, hasBody: false, new byte[256]);
        HeaderBlockReader.Read(block, ref small, int.MaxValue);
        Assert.True(small.Overflowed);

        var buffer = new byte[Http1RequestWriter.WorstCaseSize(block.Length, small.Route!)];
        var writer = new Http1RequestWriter(s_routes, hasBody: false, buffer);
        HeaderBlockReader.Read(block, ref writer, int.MaxValue);
        writer.Finish(block, int.MaxValue);

        Assert.False(writer.Overflowed);
        Assert.EndsWith("\r\n\r\n", Encoding.Latin1.GetString(buffer, 0, writer.Length), StringComparison.Ordinal);
    }

    private static string Framing(string head)
    {
        var lines = head.Split("\r\n");
        return string.Concat(lines.Where(l => l.StartsWith("Content-Length:", StringComparison.Ordinal) || l.StartsWith("Transfer-Encoding:", StringComparison.Ordinal)).Select(l => l + "\r\n"));
    }

    private static string Write(string method, string target, bool hasBody, params (string Name, string Value)[] fields)
    {
        var block = Block(method, target, fields);
        var buffer = new byte[4096];
        var writer = new Http1RequestWriter(s_routes, hasBody, buffer);
        Assert.Null(HeaderBlockReader.Read(block, ref writer, int.MaxValue));
        Assert.Null(writer.Error);
        Assert.False(writer.NeedsHttpClient);
        writer.Finish(block, int.MaxValue);
        Assert.False(writer.Overflowed);
        return Encoding.Latin1.GetString(buffer, 0, writer.Length);
    }

    private static Http1RequestWriter Run(string method, string target, bool hasBody, (string Name, string Value)[] fields)
    {
        var block = Block(method, target, fields);
        var writer = new Http1RequestWriter(s_routes, hasBody, new byte[4096]);
        HeaderBlockReader.Read(block, ref writer, int.MaxValue);
        return writer;
    }

    private static byte[] Block(string method, string target, (string Name, string Value)[] fields)
    {
        var buffer = new byte[64 * 1024];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteRequestHead(method, target);
        foreach (var (name, value) in fields)
        {
            Assert.Equal(HeaderFieldResult.Written, writer.WriteField(name, value));
        }

        return writer.WrittenSpan.ToArray();
    }

    private static BackendRoutes CreateRoutes()
    {
        var options = new TunnelClientOptions { Backend = "http://127.0.0.1:12005/" };
        options.Routes["/loadtest"] = "http://127.0.0.1:12007";
        options.Routes["/api"] = "http://backend.example:80/base/";
        options.Routes["/secure"] = "https://127.0.0.1:9443";
        return new BackendRoutes(Options.Create(options));
    }
}
