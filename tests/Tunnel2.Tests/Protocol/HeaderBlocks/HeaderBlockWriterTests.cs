using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

public class HeaderBlockWriterTests
{
    [Theory]
    [InlineData("")]
    [InlineData("Bad Name")]
    [InlineData("Name:")]
    [InlineData("Na\rme")]
    [InlineData("Na\nme")]
    [InlineData("Na\0me")]
    [InlineData("Na\u007Fme")]
    [InlineData("Na(me)")]
    [InlineData("caf\u00e9")]
    [InlineData("\u0100")]
    [InlineData("\u4e2d")]
    public void WriteField_NameNotAToken_SkippedAsInvalid(string name)
    {
        var buffer = new byte[256];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteTrailersHead();

        Assert.Equal(HeaderFieldResult.Invalid, writer.WriteField(name, "value"));

        Assert.Equal(1, writer.Length);
        Assert.False(writer.Overflowed);
    }

    [Theory]
    [InlineData("a\rb")]
    [InlineData("a\nb")]
    [InlineData("a\r\nInjected: yes")]
    [InlineData("\0")]
    [InlineData("a\u007Fb")]
    [InlineData("\u0001")]
    [InlineData("\u001F")]
    [InlineData("\u0100")]
    [InlineData("\u20ac")]
    [InlineData("\ud83d\ude00")]
    public void WriteField_ValueWithControlOrWideChar_SkippedAsInvalid(string value)
    {
        var buffer = new byte[256];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(200);

        Assert.Equal(HeaderFieldResult.Invalid, writer.WriteField("X-Test", value));
        Assert.Equal(HeaderFieldResult.Invalid, writer.WriteField("Content-Type", value));

        Assert.Equal(3, writer.Length);
        Assert.False(writer.Overflowed);
    }

    [Fact]
    public void WriteField_AfterInvalidField_KeepsWriting()
    {
        var buffer = new byte[256];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(204);

        Assert.Equal(HeaderFieldResult.Written, writer.WriteField("X-A", "1"));
        Assert.Equal(HeaderFieldResult.Invalid, writer.WriteField("X-B", "bad\r\n"));
        Assert.Equal(HeaderFieldResult.Written, writer.WriteField("X-C", "3"));

        var fields = HeaderBlockTestData.Decode(writer.WrittenSpan.ToArray()).Fields;
        Assert.Equal(["X-A", "X-C"], fields.Select(f => f.Name));
    }

    [Theory]
    [InlineData("\t")]
    [InlineData(" leading and trailing ")]
    [InlineData("\u00ff\u0080")]
    public void WriteField_TabSpaceAndObsText_Written(string value)
    {
        var buffer = new byte[256];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteTrailersHead();

        Assert.Equal(HeaderFieldResult.Written, writer.WriteField("X-Ok", value));
    }

    [Fact]
    public void WriteField_BufferTooSmall_ReportsOverflowAndRollsBackTheField()
    {
        var buffer = new byte[16];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(200);
        Assert.Equal(HeaderFieldResult.Written, writer.WriteField("Age", "1"));
        var lengthBefore = writer.Length;

        Assert.Equal(HeaderFieldResult.Overflow, writer.WriteField("X-Too-Long", "this does not fit"));

        Assert.True(writer.Overflowed);
        Assert.Equal(lengthBefore, writer.Length);
    }

    [Fact]
    public void WriteField_AfterOverflow_KeepsReportingOverflow()
    {
        var buffer = new byte[8];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(200);
        Assert.Equal(HeaderFieldResult.Overflow, writer.WriteField("X-Long-Name", "v"));

        // Even a field that would fit the space left: the block is unusable once a field was lost.
        Assert.Equal(HeaderFieldResult.Overflow, writer.WriteField("Age", "1"));
        Assert.True(writer.Overflowed);
    }

    [Fact]
    public void WriteField_ExactlyFillsBuffer_Written()
    {
        // Response head (3) + table index (1) + length (1) + "ab" (2).
        var buffer = new byte[7];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(200);

        Assert.Equal(HeaderFieldResult.Written, writer.WriteField("Age", "ab"));

        Assert.False(writer.Overflowed);
        Assert.Equal(7, writer.Length);
    }

    [Fact]
    public void WriteField_LengthPrefixDoesNotFit_ReportsOverflow()
    {
        // Head (3) + index (1) leaves 1 byte, but a 200-byte value needs a 2-byte length.
        var buffer = new byte[5];
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(200);

        Assert.Equal(HeaderFieldResult.Overflow, writer.WriteField("Age", new string('1', 200)));
        Assert.Equal(3, writer.Length);
    }

    [Fact]
    public void WriteRequestHead_BufferTooSmall_SetsOverflowed()
    {
        var buffer = new byte[4];
        var writer = new HeaderBlockWriter(buffer);

        writer.WriteRequestHead("GET", "/longer/than/the/buffer");

        Assert.True(writer.Overflowed);
    }

    [Fact]
    public void WriteResponseHead_BufferTooSmall_SetsOverflowed()
    {
        var buffer = new byte[2];
        var writer = new HeaderBlockWriter(buffer);

        writer.WriteResponseHead(200);

        Assert.True(writer.Overflowed);
        Assert.Equal(0, writer.Length);
    }

    [Fact]
    public void WriteTrailersHead_EmptyBuffer_SetsOverflowed()
    {
        var writer = new HeaderBlockWriter([]);

        writer.WriteTrailersHead();

        Assert.True(writer.Overflowed);
    }
}
