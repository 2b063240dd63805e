using System.Text;
using Tunnel2.Client.Forwarding.Http1;

namespace Tunnel2.Tests.Client.Forwarding.Http1;

/// <summary>The response head parser: the same result however the head is split across reads, and strict rejections.</summary>
public sealed class Http1HeadParserTests
{
    private const int Limit = 64 * 1024;

    private const string Http10Head = "HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nX-Empty:\r\nX-Spaces: \t a b \t\r\n\r\n";

    public static TheoryData<string> ValidHeads => new()
    {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
        "HTTP/1.1 204\r\n\r\n",
        Http10Head,
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Obs: caf\u00e9\r\n\r\n",
    };

    [Theory]
    [MemberData(nameof(ValidHeads))]
    public void Parse_AtEverySplitPoint_SameHead(string text)
    {
        var head = Encoding.Latin1.GetBytes(text);
        var whole = ParseInSegments(head, [head.Length]);

        for (var split = 0; split <= head.Length; split++)
        {
            Assert.Equal(whole, ParseInSegments(head, [split, head.Length - split]));
        }

        Assert.Equal(whole, ParseInSegments(head, Enumerable.Repeat(1, head.Length).ToArray()));
    }

    [Fact]
    public void Parse_Fields_NamesAndValuesWithoutOws()
    {
        var result = ParseInSegments(Encoding.Latin1.GetBytes(Http10Head), [3, Http10Head.Length - 3]);

        Assert.Equal("404 http/1.0 Connection=keep-alive|X-Empty=|X-Spaces=a b", result);
    }

    [Fact]
    public void Parse_BytesAfterTheHead_NotPartOfIt()
    {
        var bytes = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"u8.ToArray();
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[1];

        Assert.Equal(HeadParseStatus.Done, parser.Parse(bytes, Limit, ref fields));
        Assert.Equal(bytes.Length - 5, parser.HeadLength);
    }

    [Fact]
    public void Parse_ManyFields_FieldArrayGrows()
    {
        var text = "HTTP/1.1 200 OK\r\n" + string.Concat(Enumerable.Range(0, 100).Select(i => $"X-{i}: {i}\r\n")) + "\r\n";
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[2];

        Assert.Equal(HeadParseStatus.Done, parser.Parse(Encoding.Latin1.GetBytes(text), Limit, ref fields));
        Assert.Equal(100, parser.FieldCount);
        Assert.True(fields.Length >= 100);
    }

    [Fact]
    public void Parse_BareCrInAValue_ReplacedWithSpace_NoExtraField()
    {
        var bytes = "HTTP/1.1 200 OK\r\nX-Bad: a\rX-Injected: 1\r\n\r\n"u8.ToArray();
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[4];

        Assert.Equal(HeadParseStatus.Done, parser.Parse(bytes, Limit, ref fields));
        Assert.Equal(1, parser.FieldCount);
        Assert.Equal("a X-Injected: 1", Encoding.Latin1.GetString(fields[0].Value(bytes)));
    }

    [Theory]
    [InlineData("not HTTP", "HELLO\r\n\r\n")]
    [InlineData("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n")]
    [InlineData("no status code", "HTTP/1.1 OK\r\n\r\n")]
    [InlineData("status below 100", "HTTP/1.1 099 Odd\r\n\r\n")]
    [InlineData("HTTP/2 version", "HTTP/2.0 200 OK\r\n\r\n")]
    [InlineData("lowercase version", "http/1.1 200 OK\r\n\r\n")]
    [InlineData("no space after the code", "HTTP/1.1 200OK\r\n\r\n")]
    [InlineData("bare CR in the reason", "HTTP/1.1 200 O\rK\r\n\r\n")]
    [InlineData("bare LF ending the status line", "HTTP/1.1 200 OK\nA: b\r\n\r\n")]
    [InlineData("bare LF ending a field", "HTTP/1.1 200 OK\r\nA: b\n\r\n")]
    [InlineData("bare LF ending the head", "HTTP/1.1 200 OK\r\nA: b\r\n\n")]
    [InlineData("obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n")]
    [InlineData("obs-fold with a tab", "HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n")]
    [InlineData("whitespace before the colon", "HTTP/1.1 200 OK\r\nA : b\r\n\r\n")]
    [InlineData("empty name", "HTTP/1.1 200 OK\r\n: b\r\n\r\n")]
    [InlineData("no colon", "HTTP/1.1 200 OK\r\nJust text\r\n\r\n")]
    [InlineData("bare CR in a name", "HTTP/1.1 200 OK\r\nA\rB: c\r\n\r\n")]
    [InlineData("non-token name", "HTTP/1.1 200 OK\r\nA(b): c\r\n\r\n")]
    [InlineData("NUL in a value", "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n")]
    public void Parse_Malformed_Invalid(string what, string text)
    {
        var bytes = Encoding.Latin1.GetBytes(text);
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[4];

        var status = parser.Parse(bytes, Limit, ref fields);

        Assert.True(status == HeadParseStatus.Invalid, $"{what}: {status}");
        Assert.NotNull(parser.Error);
    }

    [Fact]
    public void Parse_OverTheLimit_InvalidWithoutTheEnd()
    {
        var bytes = Encoding.Latin1.GetBytes("HTTP/1.1 200 OK\r\nX-Huge: " + new string('h', 2000));
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[4];

        Assert.Equal(HeadParseStatus.Invalid, parser.Parse(bytes, 1024, ref fields));
    }

    [Fact]
    public void Parse_CompleteHeadLongerThanTheLimit_Invalid()
    {
        var bytes = Encoding.Latin1.GetBytes("HTTP/1.1 200 OK\r\nX-Huge: " + new string('h', 2000) + "\r\n\r\n");
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[4];

        Assert.Equal(HeadParseStatus.Invalid, parser.Parse(bytes, 1024, ref fields));
    }

    [Fact]
    public void ForTrailers_FieldsAndEmptyLine_NoStatusLine()
    {
        var bytes = "Grpc-Status: 0\r\nGrpc-Message: ok\r\n\r\n"u8.ToArray();
        var parser = Http1HeadParser.ForTrailers();
        var fields = new FieldRange[4];

        Assert.Equal(HeadParseStatus.Done, parser.Parse(bytes, bytes.Length + 1, ref fields));
        Assert.Equal(2, parser.FieldCount);
        Assert.Equal("Grpc-Message", Encoding.Latin1.GetString(fields[1].Name(bytes)));
    }

    /// <summary>Feeds <paramref name="head"/> in reads of the given sizes, as a connection would; returns the head as text.</summary>
    private static string ParseInSegments(byte[] head, int[] segments)
    {
        var buffer = new byte[head.Length];
        var filled = 0;
        var parser = default(Http1HeadParser);
        var fields = new FieldRange[1];
        var status = parser.Parse(buffer.AsSpan(0, 0), Limit, ref fields);
        foreach (var segment in segments.Where(s => s > 0))
        {
            Assert.Equal(HeadParseStatus.NeedMore, status);
            head.AsSpan(filled, segment).CopyTo(buffer.AsSpan(filled));
            filled += segment;
            status = parser.Parse(buffer.AsSpan(0, filled), Limit, ref fields);
        }

        Assert.Equal(HeadParseStatus.Done, status);
        Assert.Equal(head.Length, parser.HeadLength);
        var text = new StringBuilder().Append(parser.StatusCode).Append(parser.IsHttp10 ? " http/1.0 " : " http/1.1 ");
        for (var i = 0; i < parser.FieldCount; i++)
        {
            text.Append(i == 0 ? string.Empty : "|")
                .Append(Encoding.Latin1.GetString(fields[i].Name(buffer)))
                .Append('=')
                .Append(Encoding.Latin1.GetString(fields[i].Value(buffer)));
        }

        return text.ToString();
    }
}
