using System.Buffers;

namespace Tunnel2.Protocol.Framing;

/// <summary>
/// Parses frames out of the uplink's input. Every length is checked against the limits before the payload is
/// awaited or any buffer is taken, so a header claiming a 2 GiB payload fails as soon as its 9 bytes arrive.
/// </summary>
public static class FrameReader
{
    /// <summary>
    /// Tries to read one whole frame from the start of <paramref name="buffer"/>.
    /// <code>
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
    /// </summary>
    /// <returns>
    /// True with <paramref name="buffer"/> advanced past the frame; false when more bytes are needed, with
    /// <paramref name="buffer"/> unchanged.
    /// </returns>
    /// <exception cref="TunnelConnectionException">The header breaks a rule of docs/protocol.md §3.</exception>
    public static bool TryReadFrame(
        ref ReadOnlySequence<byte> buffer,
        int maxPayloadLength,
        out FrameHeader header,
        out ReadOnlySequence<byte> payload)
    {
        if (buffer.Length < FrameHeader.Size)
        {
            header = default;
            payload = default;
            return false;
        }

        var first = buffer.FirstSpan;
        if (first.Length >= FrameHeader.Size)
        {
            header = FrameHeader.Read(first);
        }
        else
        {
            Span<byte> headerBytes = stackalloc byte[FrameHeader.Size];
            buffer.Slice(0, FrameHeader.Size).CopyTo(headerBytes);
            header = FrameHeader.Read(headerBytes);
        }

        Validate(header, maxPayloadLength);

        var frameLength = FrameHeader.Size + (long)header.PayloadLength;
        if (buffer.Length < frameLength)
        {
            payload = default;
            return false;
        }

        payload = buffer.Slice(FrameHeader.Size, header.PayloadLength);
        buffer = buffer.Slice(payload.End);
        return true;
    }

    /// <summary>Checks the rules that depend on the header alone (docs/protocol.md §3.1).</summary>
    /// <exception cref="TunnelConnectionException">With FRAME_SIZE_ERROR or PROTOCOL_ERROR.</exception>
    public static void Validate(in FrameHeader header, int maxPayloadLength)
    {
        if (header.PayloadLength > maxPayloadLength)
        {
            throw new TunnelConnectionException(
                TunnelErrorCode.FrameSizeError,
                $"A {header.Type} frame declared a payload of {header.PayloadLength} bytes; the limit is {maxPayloadLength}.");
        }

        FrameFlags allowedFlags;
        bool needsStream;
        switch (header.Type)
        {
            case FrameType.Data:
            case FrameType.Headers:
                allowedFlags = FrameFlags.EndStream;
                needsStream = true;
                break;
            case FrameType.Reset:
                allowedFlags = FrameFlags.None;
                needsStream = true;
                RequireLength(header, 4);
                break;
            case FrameType.Settings:
                allowedFlags = FrameFlags.Ack;
                needsStream = false;
                if (header.HasFlag(FrameFlags.Ack) ? header.PayloadLength != 0 : header.PayloadLength % SettingsFrame.EntrySize != 0)
                {
                    throw new TunnelConnectionException(
                        TunnelErrorCode.FrameSizeError,
                        $"A SETTINGS frame had a payload of {header.PayloadLength} bytes; it must be a multiple of {SettingsFrame.EntrySize} (0 with ACK).");
                }

                break;
            case FrameType.Ping:
                allowedFlags = FrameFlags.Ack;
                needsStream = false;
                RequireLength(header, 8);
                break;
            case FrameType.GoAway:
                allowedFlags = FrameFlags.None;
                needsStream = false;
                if (header.PayloadLength < 8)
                {
                    throw new TunnelConnectionException(
                        TunnelErrorCode.FrameSizeError,
                        $"A GOAWAY frame had a payload of {header.PayloadLength} bytes; it needs at least 8.");
                }

                break;
            case FrameType.WindowUpdate:
                allowedFlags = FrameFlags.None;
                needsStream = header.StreamId != 0;
                RequireLength(header, 4);
                break;
            default:
                throw new TunnelConnectionException(
                    TunnelErrorCode.ProtocolError,
                    $"Unknown frame type 0x{(byte)header.Type:X2}.");
        }

        if ((header.Flags & ~allowedFlags) != 0)
        {
            throw new TunnelConnectionException(
                TunnelErrorCode.ProtocolError,
                $"A {header.Type} frame had undefined flags 0x{(byte)header.Flags:X2}.");
        }

        if (needsStream && header.StreamId == 0)
        {
            throw new TunnelConnectionException(
                TunnelErrorCode.ProtocolError,
                $"A {header.Type} frame must name a stream; it carried stream id 0.");
        }

        if (!needsStream && header.Type != FrameType.WindowUpdate && header.StreamId != 0)
        {
            throw new TunnelConnectionException(
                TunnelErrorCode.ProtocolError,
                $"A {header.Type} frame applies to the connection; it carried stream id {header.StreamId}.");
        }
    }

    private static void RequireLength(in FrameHeader header, int length)
    {
        if (header.PayloadLength != length)
        {
            throw new TunnelConnectionException(
                TunnelErrorCode.FrameSizeError,
                $"A {header.Type} frame had a payload of {header.PayloadLength} bytes; it must be {length}.");
        }
    }
}
