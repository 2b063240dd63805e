using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

public class VarIntTests
{
    [Theory]
    [InlineData(0, new byte[] { 0x00 })]
    [InlineData(1, new byte[] { 0x01 })]
    [InlineData(127, new byte[] { 0x7F })]
    [InlineData(128, new byte[] { 0x80, 0x01 })]
    [InlineData(300, new byte[] { 0xAC, 0x02 })]
    [InlineData(16_383, new byte[] { 0xFF, 0x7F })]
    [InlineData(16_384, new byte[] { 0x80, 0x80, 0x01 })]
    [InlineData((1 << 21) - 1, new byte[] { 0xFF, 0xFF, 0x7F })]
    [InlineData(1 << 21, new byte[] { 0x80, 0x80, 0x80, 0x01 })]
    [InlineData(VarInt.MaxValue, new byte[] { 0xFF, 0xFF, 0xFF, 0x7F })]
    public void TryWrite_ThenTryRead_RoundTripsLowGroupFirst(int value, byte[] expected)
    {
        var buffer = new byte[VarInt.MaxBytes];

        Assert.True(VarInt.TryWrite(buffer, value, out var written));

        Assert.Equal(expected, buffer.AsSpan(0, written).ToArray());
        Assert.Equal(expected.Length, VarInt.GetByteCount(value));
        Assert.Equal(written, VarInt.TryRead(buffer.AsSpan(0, written), out var read));
        Assert.Equal(value, read);
    }

    [Fact]
    public void TryWrite_DestinationTooShort_ReturnsFalse()
    {
        var buffer = new byte[1];

        Assert.False(VarInt.TryWrite(buffer, 128, out var written));
        Assert.Equal(0, written);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x80 })]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF })]
    [InlineData(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF })]
    [InlineData(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x01 })]
    public void TryRead_TruncatedOrLongerThanFourBytes_ReturnsZero(byte[] source)
    {
        Assert.Equal(0, VarInt.TryRead(source, out var value));
        Assert.Equal(0, value);
    }

    [Fact]
    public void TryRead_StopsAtTheFirstByteWithoutContinuation()
    {
        byte[] source = [0x05, 0xFF, 0xFF];

        Assert.Equal(1, VarInt.TryRead(source, out var value));
        Assert.Equal(5, value);
    }
}
