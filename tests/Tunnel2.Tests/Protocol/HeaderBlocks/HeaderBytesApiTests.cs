using System.Text;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

/// <summary>The byte-span forms of the name lookups and of WriteField: same answers as the string forms, no allocation.</summary>
public sealed class HeaderBytesApiTests
{
    [Fact]
    public void FindName_Bytes_SameAsString_AnyCase()
    {
        for (var i = 1; i < StaticTable.NameCount; i++)
        {
            var name = StaticTable.GetName(i)!;
            Assert.Equal(i, StaticTable.FindName(Encoding.ASCII.GetBytes(name)));
            Assert.Equal(i, StaticTable.FindName(Encoding.ASCII.GetBytes(name.ToUpperInvariant())));
        }

        Assert.Equal(0, StaticTable.FindName("X-Not-In-The-Table"u8));
        Assert.Equal(0, StaticTable.FindName(Encoding.ASCII.GetBytes(new string('a', 100))));
        Assert.Equal(0, StaticTable.FindName([0xE9]));
        Assert.Equal(0, StaticTable.FindName(ReadOnlySpan<byte>.Empty));
    }

    [Theory]
    [InlineData("Connection", true)]
    [InlineData("transfer-encoding", true)]
    [InlineData("PROXY-AUTHENTICATION-INFO", true)]
    [InlineData("Content-Length", false)]
    [InlineData("X-Connection", false)]
    public void IsHopByHop_Bytes_SameAsString(string name, bool expected)
    {
        Assert.Equal(expected, HopByHopHeaders.IsHopByHop(name));
        Assert.Equal(expected, HopByHopHeaders.IsHopByHop(Encoding.ASCII.GetBytes(name)));
    }

    [Theory]
    [InlineData("X-Secret, Keep-Alive", "x-secret", true)]
    [InlineData(" close ,\tX-Secret ", "X-SECRET", true)]
    [InlineData("X-Secret-2", "X-Secret", false)]
    [InlineData("", "X-Secret", false)]
    public void IsNominated_Bytes_SameAsChars(string connection, string name, bool expected)
    {
        Assert.Equal(expected, HopByHopHeaders.IsNominated(connection, name));
        Assert.Equal(expected, HopByHopHeaders.IsNominated(Encoding.ASCII.GetBytes(connection), Encoding.ASCII.GetBytes(name)));
    }

    [Theory]
    [InlineData("websocket", true)]
    [InlineData("h2c", false)]
    [InlineData("websocket, H2C", false)]
    [InlineData(" \t", false)]
    public void IsForwardableUpgrade_Bytes_SameAsString(string upgrade, bool expected)
    {
        Assert.Equal(expected, HopByHopHeaders.IsForwardableUpgrade(upgrade));
        Assert.Equal(expected, HopByHopHeaders.IsForwardableUpgrade(Encoding.ASCII.GetBytes(upgrade)));
    }

    [Fact]
    public void WriteField_Bytes_SameBlockAsString()
    {
        var fields = new[] { ("Content-Type", "text/plain"), ("x-custom", "caf\u00e9"), ("Set-Cookie", "a=1") };
        var fromStrings = new byte[256];
        var fromBytes = new byte[256];
        var a = new HeaderBlockWriter(fromStrings);
        var b = new HeaderBlockWriter(fromBytes);
        a.WriteResponseHead(200);
        b.WriteResponseHead(200);
        foreach (var (name, value) in fields)
        {
            Assert.Equal(HeaderFieldResult.Written, a.WriteField(name, value));
            Assert.Equal(HeaderFieldResult.Written, b.WriteField(Encoding.Latin1.GetBytes(name), Encoding.Latin1.GetBytes(value)));
        }

        Assert.Equal(a.WrittenSpan.ToArray(), b.WrittenSpan.ToArray());
    }

    [Fact]
    public void WriteField_Bytes_InvalidSkipped_OverflowRolledBack()
    {
        var writer = new HeaderBlockWriter(new byte[16]);
        writer.WriteResponseHead(200);

        Assert.Equal(HeaderFieldResult.Invalid, writer.WriteField("X-Bad"u8, "a\rb"u8));
        Assert.Equal(HeaderFieldResult.Invalid, writer.WriteField("Bad Name"u8, "v"u8));
        Assert.Equal(HeaderFieldResult.Overflow, writer.WriteField("X-Long"u8, "0123456789abcdef"u8));
        Assert.Equal(3, writer.Length);
        Assert.True(writer.Overflowed);
    }

    [Fact]
    public void ByteLookupsAndWriteField_AllocateNothing()
    {
        var buffer = new byte[1024];
        Run(buffer);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            Run(buffer);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        static void Run(byte[] buffer)
        {
            var writer = new HeaderBlockWriter(buffer);
            writer.WriteResponseHead(200);
            writer.WriteField("Content-Type"u8, "application/json; charset=utf-8"u8);
            writer.WriteField("X-Request-Id"u8, "0123456789"u8);
            writer.WriteField("X-Literal"u8, "value"u8);
            Assert.True(HopByHopHeaders.IsHopByHop("Keep-Alive"u8));
            Assert.True(HopByHopHeaders.IsNominated("close, X-A"u8, "x-a"u8));
        }
    }
}
