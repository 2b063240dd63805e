namespace Tunnel2.Protocol.Framing;

/// <summary>
/// Frame types of the uplink protocol (docs/protocol.md §3). Values follow HTTP/2 (RFC 9113 §6) where the frame has the
/// same meaning, so a capture reads familiarly; types HTTP/2 has and we do not (PRIORITY, PUSH_PROMISE, CONTINUATION)
/// are left unassigned.
/// </summary>
public enum FrameType : byte
{
    Data = 0x0,
    Headers = 0x1,
    Reset = 0x3,
    Settings = 0x4,
    Ping = 0x6,
    GoAway = 0x7,
    WindowUpdate = 0x8,
}
