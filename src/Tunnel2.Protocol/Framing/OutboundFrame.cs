using System.Buffers;

namespace Tunnel2.Protocol.Framing;

/// <summary>
/// One frame waiting for the writer loop. DATA, HEADERS, SETTINGS and GOAWAY payloads live in a pooled array that the
/// frame owns when <see cref="ReturnBuffer"/> is set; the fixed-size control payloads travel inline, so queueing a
/// frame allocates nothing.
/// </summary>
internal readonly struct OutboundFrame
{
    private OutboundFrame(FrameType type, FrameFlags flags, int streamId, byte[]? buffer, int offset, int length, bool returnBuffer, ulong inline, bool releaseOnly = false)
    {
        Type = type;
        Flags = flags;
        StreamId = streamId;
        Buffer = buffer;
        Offset = offset;
        Length = length;
        ReturnBuffer = returnBuffer;
        Inline = inline;
        ReleaseOnly = releaseOnly;
    }

    public FrameType Type { get; }

    public FrameFlags Flags { get; }

    public int StreamId { get; }

    public byte[]? Buffer { get; }

    public int Offset { get; }

    public int Length { get; }

    /// <summary>The writer returns <see cref="Buffer"/> to <see cref="ArrayPool{T}.Shared"/> after writing.</summary>
    public bool ReturnBuffer { get; }

    /// <summary>PING opaque data, WINDOW_UPDATE increment, RESET code, or GOAWAY (last stream id, code).</summary>
    public ulong Inline { get; }

    /// <summary>Writes nothing; only returns <see cref="Buffer"/> once the frames queued before it have used it.</summary>
    public bool ReleaseOnly { get; }

    public bool IsControl => Type is FrameType.Ping or FrameType.Settings or FrameType.WindowUpdate or FrameType.Reset or FrameType.GoAway;

    public static OutboundFrame Payload(FrameType type, FrameFlags flags, int streamId, byte[] buffer, int offset, int length, bool returnBuffer)
        => new(type, flags, streamId, buffer, offset, length, returnBuffer, 0);

    public static OutboundFrame EmptyData(int streamId, FrameFlags flags)
        => new(FrameType.Data, flags, streamId, null, 0, 0, false, 0);

    public static OutboundFrame Release(byte[] buffer)
        => new(FrameType.Data, FrameFlags.None, 0, buffer, 0, 0, true, 0, releaseOnly: true);

    public static OutboundFrame Reset(int streamId, TunnelErrorCode code)
        => new(FrameType.Reset, FrameFlags.None, streamId, null, 0, 4, false, (uint)code);

    public static OutboundFrame WindowUpdate(int streamId, int increment)
        => new(FrameType.WindowUpdate, FrameFlags.None, streamId, null, 0, 4, false, (uint)increment);

    public static OutboundFrame Ping(ulong opaque, bool ack)
        => new(FrameType.Ping, ack ? FrameFlags.Ack : FrameFlags.None, 0, null, 0, 8, false, opaque);

    public static OutboundFrame SettingsAck()
        => new(FrameType.Settings, FrameFlags.Ack, 0, null, 0, 0, false, 0);

    public static OutboundFrame GoAway(int lastStreamId, TunnelErrorCode code, byte[]? debugData)
        => new(FrameType.GoAway, FrameFlags.None, 0, debugData, 0, debugData?.Length ?? 0, false, ((ulong)(uint)lastStreamId << 32) | (uint)code);

    public void ReleaseBuffer()
    {
        if (ReturnBuffer && Buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(Buffer);
        }
    }
}
