using System.Security.Cryptography;

namespace Tunnel2.Server.Sessions;

/// <summary>Session ids are capabilities: 128 random bits in GUID text form, and never written to logs in full.</summary>
internal static class SessionIds
{
    /// <summary>Length of an id in its text form, e.g. 22222222-2222-2222-2222-222222222222.</summary>
    public const int TextLength = 36;

    /// <summary>128 bits from the CSPRNG (OWASP ASVS 5.0 §7.2.3), formatted as a GUID; no version bits are forced.</summary>
    public static Guid NewId()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return new Guid(bytes);
    }

    public static bool TryParse(ReadOnlySpan<char> text, out Guid id)
        => Guid.TryParseExact(text, "D", out id);

    public static string Redact(Guid id) => Tunnel2.Protocol.SessionIdRedaction.Redact(id);
}
