using System.Buffers.Binary;
using System.Diagnostics;

namespace Tunnel2.Protocol.Framing;

/// <summary>
/// The fixed 9-byte header that starts every frame.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-----------------------------------------------+
/// |                 Length (24)                   |
/// +---------------+---------------+---------------+
/// |   Type (8)    |   Flags (8)   |
/// +-+-------------+---------------+-------------------------------+
/// |R|                 Stream Identifier (31)                      |
/// +=+=============================================================+
/// |                   Frame Payload (Length bytes)              ...
/// +---------------------------------------------------------------+
/// </code>
/// Length is the payload length, big-endian. R is reserved: sent as 0, ignored on receipt.
/// </summary>
public readonly record struct FrameHeader(int PayloadLength, FrameType Type, FrameFlags Flags, int StreamId)
{
    /// <summary>Size of the header on the wire.</summary>
    public const int Size = 9;

    /// <summary>The largest length the 24-bit field can carry.</summary>
    public const int MaxLengthFieldValue = (1 << 24) - 1;

    public bool HasFlag(FrameFlags flag) => (Flags & flag) == flag;

    /// <summary>Writes the header into the first <see cref="Size"/> bytes of <paramref name="destination"/>.</summary>
    public static void Write(Span<byte> destination, int payloadLength, FrameType type, FrameFlags flags, int streamId)
    {
        Debug.Assert((uint)payloadLength <= MaxLengthFieldValue);
        Debug.Assert(streamId >= 0);

        // One bounds check for the whole header instead of one per field.
        _ = destination[Size - 1];
        destination[0] = (byte)(payloadLength >> 16);
        destination[1] = (byte)(payloadLength >> 8);
        destination[2] = (byte)payloadLength;
        destination[3] = (byte)type;
        destination[4] = (byte)flags;
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(5), (uint)streamId & 0x7FFF_FFFFu);
    }

    /// <summary>Reads a header from the first <see cref="Size"/> bytes of <paramref name="source"/> without validating it.</summary>
    public static FrameHeader Read(ReadOnlySpan<byte> source)
    {
        _ = source[Size - 1];
        var length = (source[0] << 16) | (source[1] << 8) | source[2];
        var streamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(source.Slice(5)) & 0x7FFF_FFFFu);
        return new FrameHeader(length, (FrameType)source[3], (FrameFlags)source[4], streamId);
    }
}
