using System.Security.Cryptography;

namespace Tunnel2.Protocol;

/// <summary>
/// Session ids are capabilities (they appear in public URLs), so logs on both ends carry only this label: "s:" and
/// 8 hex digits of SHA-256 of the id. Stable, so log lines of one session can be correlated; not reversible.
/// </summary>
public static class SessionIdRedaction
{
    public static string Redact(Guid sessionId)
    {
        Span<byte> idBytes = stackalloc byte[16];
        sessionId.TryWriteBytes(idBytes);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(idBytes, hash);
        return "s:" + Convert.ToHexStringLower(hash.Slice(0, 4));
    }
}
