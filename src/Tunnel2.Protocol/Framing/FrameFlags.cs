namespace Tunnel2.Protocol.Framing;

/// <summary>Frame flags (docs/protocol.md §3). Flags not defined for a frame type must be zero.</summary>
[Flags]
public enum FrameFlags : byte
{
    None = 0x0,

    /// <summary>DATA, HEADERS: the sender will send nothing more on this stream.</summary>
    EndStream = 0x1,

    /// <summary>SETTINGS, PING: this frame acknowledges the peer's frame.</summary>
    Ack = 0x1,
}
