using Tunnel2.Protocol.Framing;

namespace Tunnel2.Tests.Protocol.Framing;

public class FrameHeaderTests
{
    [Theory]
    [InlineData(0, FrameType.Data, FrameFlags.None, 1)]
    [InlineData(16_384, FrameType.Data, FrameFlags.EndStream, 2)]
    [InlineData(FrameHeader.MaxLengthFieldValue, FrameType.Headers, FrameFlags.EndStream, int.MaxValue)]
    [InlineData(4, FrameType.Reset, FrameFlags.None, 0x0102_0304)]
    [InlineData(24, FrameType.Settings, FrameFlags.None, 0)]
    [InlineData(0, FrameType.Settings, FrameFlags.Ack, 0)]
    [InlineData(8, FrameType.Ping, FrameFlags.Ack, 0)]
    [InlineData(12, FrameType.GoAway, FrameFlags.None, 0)]
    [InlineData(4, FrameType.WindowUpdate, FrameFlags.None, 7)]
    public void Write_ThenRead_RoundTripsEveryField(int length, FrameType type, FrameFlags flags, int streamId)
    {
        Span<byte> bytes = stackalloc byte[FrameHeader.Size];

        FrameHeader.Write(bytes, length, type, flags, streamId);
        var header = FrameHeader.Read(bytes);

        Assert.Equal(new FrameHeader(length, type, flags, streamId), header);
    }

    [Fact]
    public void Write_LaysOutFieldsBigEndian()
    {
        var bytes = new byte[FrameHeader.Size];

        FrameHeader.Write(bytes, 0x01_02_03, FrameType.WindowUpdate, FrameFlags.None, 0x0A0B_0C0D);

        Assert.Equal(new byte[] { 0x01, 0x02, 0x03, 0x08, 0x00, 0x0A, 0x0B, 0x0C, 0x0D }, bytes);
    }

    [Fact]
    public void Read_ReservedBitSet_IsIgnored()
    {
        byte[] bytes = [0, 0, 4, (byte)FrameType.WindowUpdate, 0, 0x80, 0, 0, 0x05];

        var header = FrameHeader.Read(bytes);

        Assert.Equal(5, header.StreamId);
    }

    [Fact]
    public void Write_ShortDestination_Throws()
    {
        var bytes = new byte[FrameHeader.Size - 1];

        Assert.Throws<IndexOutOfRangeException>(() => FrameHeader.Write(bytes, 0, FrameType.Data, FrameFlags.None, 1));
    }

    [Fact]
    public void HasFlag_TestsTheFlagBit()
    {
        Assert.True(new FrameHeader(0, FrameType.Data, FrameFlags.EndStream, 1).HasFlag(FrameFlags.EndStream));
        Assert.False(new FrameHeader(0, FrameType.Data, FrameFlags.None, 1).HasFlag(FrameFlags.EndStream));
    }
}
