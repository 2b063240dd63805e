using System.Buffers.Binary;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;

namespace Tunnel2.Tests.Protocol;

/// <summary>Raw frame bytes for tests, including ones the product code would never write.</summary>
internal static class TestFrames
{
    public static byte[] Create(FrameType type, FrameFlags flags, int streamId, ReadOnlySpan<byte> payload)
        => CreateRaw(payload.Length, (byte)type, (byte)flags, (uint)streamId, payload);

    /// <summary>Any header at all: a length that disagrees with the payload, an unknown type, the reserved bit.</summary>
    public static byte[] CreateRaw(int declaredLength, byte type, byte flags, uint streamId, ReadOnlySpan<byte> payload = default)
    {
        var bytes = new byte[FrameHeader.Size + payload.Length];
        bytes[0] = (byte)(declaredLength >> 16);
        bytes[1] = (byte)(declaredLength >> 8);
        bytes[2] = (byte)declaredLength;
        bytes[3] = type;
        bytes[4] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(5), streamId);
        payload.CopyTo(bytes.AsSpan(FrameHeader.Size));
        return bytes;
    }

    public static byte[] UInt32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    public static byte[] UInt64(ulong value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return bytes;
    }

    public static byte[] GoAwayPayload(uint lastStreamId, TunnelErrorCode errorCode, ReadOnlySpan<byte> debugData = default)
    {
        var bytes = new byte[8 + debugData.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, lastStreamId);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), (uint)errorCode);
        debugData.CopyTo(bytes.AsSpan(8));
        return bytes;
    }

    public static byte[] SettingsPayload(params (SettingsParameter Id, uint Value)[] entries)
    {
        var bytes = new byte[entries.Length * SettingsFrame.EntrySize];
        for (var i = 0; i < entries.Length; i++)
        {
            var entry = bytes.AsSpan(i * SettingsFrame.EntrySize);
            BinaryPrimitives.WriteUInt16BigEndian(entry, (ushort)entries[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(entry.Slice(2), entries[i].Value);
        }

        return bytes;
    }

    /// <summary>Bytes 0, 1, 2, … of the given length, so misplaced payload bytes show up in comparisons.</summary>
    public static byte[] Pattern(int length, int seed = 0)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)(i + seed);
        }

        return bytes;
    }
}
