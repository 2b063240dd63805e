using System.Text;
using Tunnel2.Protocol.HeaderBlocks;
using static Tunnel2.Tests.Protocol.HeaderBlocks.HeaderBlockTestData;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

public class HeaderBlockRoundTripTests
{
    public static TheoryData<string, int> TableMethods()
    {
        var data = new TheoryData<string, int>();
        for (var code = 1; code < StaticTable.MethodCount; code++)
        {
            data.Add(StaticTable.GetMethod(code)!, code);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TableMethods))]
    public void RequestHead_TableMethod_TravelsAsOneByteCode(string method, int code)
    {
        var block = Request(method, "/");

        Assert.Equal(new byte[] { (byte)HeaderBlockKind.Request, (byte)code, 1, (byte)'/' }, block);
        var decoded = Decode(block);
        Assert.Equal(code, decoded.MethodCode);
        Assert.Equal(method, decoded.Method);
    }

    [Theory]
    [InlineData("PROPFIND")]
    [InlineData("get")]
    [InlineData("M-SEARCH")]
    [InlineData("X")]
    public void RequestHead_OtherMethod_TravelsAsLiteral(string method)
    {
        var decoded = Decode(Request(method, "/x"));

        Assert.Equal(0, decoded.MethodCode);
        Assert.Equal(method, decoded.Method);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/api/items?id=42&sort=desc")]
    [InlineData("/p%C3%A5th/with%20escapes?q=a+b#frag")]
    [InlineData("*")]
    [InlineData("/caf\u00e9?\u00ff=\u0080")]
    public void RequestHead_Target_RoundTripsByteExact(string target)
    {
        var block = Request("GET", target);

        var decoded = Decode(block);
        Assert.Equal(HeaderBlockKind.Request, decoded.Kind);
        Assert.Equal(target, decoded.Target);
        Assert.Equal(Encoding.Latin1.GetBytes(target), block.AsSpan(3).ToArray());
    }

    [Theory]
    [InlineData(100)]
    [InlineData(101)]
    [InlineData(200)]
    [InlineData(404)]
    [InlineData(599)]
    [InlineData(999)]
    public void ResponseHead_Status_RoundTrips(int status)
    {
        var block = Response(status);

        Assert.Equal(3, block.Length);
        var decoded = Decode(block);
        Assert.Equal(HeaderBlockKind.Response, decoded.Kind);
        Assert.Equal(status, decoded.Status);
        Assert.Empty(decoded.Fields);
    }

    [Fact]
    public void Trailers_WithFields_RoundTrip()
    {
        var decoded = Decode(Trailers(("Grpc-Status", "0"), ("Grpc-Message", ""), ("X-Checksum", "abc")));

        Assert.Equal(HeaderBlockKind.Trailers, decoded.Kind);
        Assert.Equal(["Grpc-Status", "Grpc-Message", "X-Checksum"], decoded.Fields.Select(f => f.Name));
        Assert.Equal(["0", "", "abc"], decoded.Fields.Select(f => f.ValueText));
    }

    [Fact]
    public void Trailers_Empty_IsOneByte()
    {
        var block = Trailers();

        Assert.Equal(new byte[] { (byte)HeaderBlockKind.Trailers }, block);
        Assert.Empty(Decode(block).Fields);
    }

    [Theory]
    [InlineData("Content-Type")]
    [InlineData("content-type")]
    [InlineData("CONTENT-TYPE")]
    public void Field_TableName_TravelsAsIndexInAnyCase(string name)
    {
        var block = Response(200, (name, "text/plain"));

        Assert.Equal((byte[])[0x2, 0x00, 0xC8, (byte)StaticTable.FindName("Content-Type"), 10, .. "text/plain"u8], block);
        var field = Assert.Single(Decode(block).Fields);
        Assert.Equal(StaticTable.FindName("Content-Type"), field.StaticIndex);
        Assert.Equal("Content-Type", field.Name);
        Assert.Equal("text/plain", field.ValueText);
    }

    [Theory]
    [InlineData("X-Custom")]
    [InlineData("x-CuStOm-2")]
    [InlineData("!#$%&'*+-.^_`|~")]
    public void Field_LiteralName_RoundTripsWithItsCase(string name)
    {
        var field = Assert.Single(Decode(Request("GET", "/", (name, "v"))).Fields);

        Assert.Equal(0, field.StaticIndex);
        Assert.Equal(name, field.Name);
    }

    [Fact]
    public void Field_EmptyValue_RoundTrips()
    {
        var fields = Decode(Request("GET", "/", ("Accept", ""), ("X-Empty", ""))).Fields;

        Assert.All(fields, f => Assert.Empty(f.Value));
        Assert.Equal(2, fields.Count);
    }

    [Fact]
    public void Field_Latin1Value_RoundTripsByteExact()
    {
        var value = new string(Enumerable.Range(0x80, 0x80).Select(c => (char)c).ToArray()) + "\t plain ~";

        var field = Assert.Single(Decode(Response(200, ("X-Latin1", value))).Fields);

        Assert.Equal(Enumerable.Range(0x80, 0x80).Select(b => (byte)b).Concat("\t plain ~"u8.ToArray()), field.Value);
        Assert.Equal(value, field.ValueText);
    }

    [Fact]
    public void Field_RepeatedNames_KeepEveryValueInOrder()
    {
        var fields = Decode(Response(
            200,
            ("Set-Cookie", "a=1"),
            ("X-Dup", "first"),
            ("Set-Cookie", "b=2"),
            ("X-Dup", "second"),
            ("set-cookie", "c=3"))).Fields;

        Assert.Equal(["Set-Cookie", "X-Dup", "Set-Cookie", "X-Dup", "Set-Cookie"], fields.Select(f => f.Name));
        Assert.Equal(["a=1", "first", "b=2", "second", "c=3"], fields.Select(f => f.ValueText));
    }

    [Fact]
    public void Field_LongValue_UsesMultiByteLength()
    {
        var value = new string('v', 20_000);

        var block = Response(200, ("X-Long", value));

        // 20,000 needs three 7-bit groups.
        Assert.Equal(3 + 1 + 1 + "X-Long".Length + 3 + value.Length, block.Length);
        Assert.Equal(value, Assert.Single(Decode(block).Fields).ValueText);
    }

    [Fact]
    public void RequestHead_TypicalForwardedRequest_RoundTrips()
    {
        (string, string)[] fields =
        [
            ("Host", "example.test"),
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("Accept", "*/*"),
            ("Accept-Encoding", "gzip, br"),
            ("Cookie", "session=abc; theme=dark"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Prefix", "/session/22222222-2222-2222-2222-222222222222"),
            ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ("X-Custom-Header", "value with spaces"),
        ];

        var decoded = Decode(Request("POST", "/api/items?id=42", fields));

        Assert.Equal("POST", decoded.Method);
        Assert.Equal("/api/items?id=42", decoded.Target);
        Assert.Equal(fields.Select(f => f.Item1), decoded.Fields.Select(f => f.Name));
        Assert.Equal(fields.Select(f => f.Item2), decoded.Fields.Select(f => f.ValueText));
        Assert.Equal(9, decoded.Fields.Count(f => f.StaticIndex != 0));
    }
}
