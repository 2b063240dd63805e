using System.Buffers.Binary;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;

namespace Tunnel2.Tests.Protocol;

/// <summary>A frame as a test received it: the header and a copy of the payload.</summary>
internal sealed record TestFrame(FrameHeader Header, byte[] Payload)
{
    public FrameType Type => Header.Type;

    public int StreamId => Header.StreamId;

    public TunnelErrorCode ErrorCode => Header.Type switch
    {
        FrameType.Reset => (TunnelErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Payload),
        FrameType.GoAway => (TunnelErrorCode)BinaryPrimitives.ReadUInt32BigEndian(Payload.AsSpan(4)),
        _ => throw new InvalidOperationException($"A {Header.Type} frame carries no error code."),
    };

    public int WindowIncrement => (int)(BinaryPrimitives.ReadUInt32BigEndian(Payload) & 0x7FFF_FFFF);

    public int LastStreamId => (int)(BinaryPrimitives.ReadUInt32BigEndian(Payload) & 0x7FFF_FFFF);

    public ulong PingOpaque => BinaryPrimitives.ReadUInt64BigEndian(Payload);

    public override string ToString() => $"{Header.Type} flags=0x{(byte)Header.Flags:X2} stream={Header.StreamId} length={Header.PayloadLength}";
}
