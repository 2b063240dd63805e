namespace Tunnel2.Protocol.HeaderBlocks;

/// <summary>What a header block starts with (docs/protocol.md §4.1).</summary>
public enum HeaderBlockKind : byte
{
    Request = 0x1,
    Response = 0x2,
    Trailers = 0x3,
}
