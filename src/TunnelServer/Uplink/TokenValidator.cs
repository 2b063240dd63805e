using System.Buffers;
using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Tunnel2.Server.Uplink;

/// <summary>Who an uplink token belongs to, and the fixed session ids it may claim.</summary>
internal sealed record TunnelPrincipal(string Name, FrozenSet<Guid> Sessions);

/// <summary>
/// Checks bearer tokens against the configured SHA-256 hashes. Every configured hash is compared, in constant time,
/// whatever matched, so timing says nothing about which hash or how many bytes matched (reliability.md §4.3).
/// </summary>
internal sealed class TokenValidator
{
    /// <summary>Longer tokens are rejected before hashing; real ones are 43–64 characters.</summary>
    public const int MaxTokenLength = 1024;

    private readonly Entry[] _entries;

    public TokenValidator(IOptions<TunnelServerOptions> options)
    {
        _entries = options.Value.Tokens
            .Select(t => new Entry(
                Convert.FromHexString(t.Sha256),
                new TunnelPrincipal(t.Name, t.Sessions.Select(Guid.Parse).ToFrozenSet())))
            .ToArray();
    }

    public int TokenCount => _entries.Length;

    public TunnelPrincipal? Validate(ReadOnlySpan<char> token)
    {
        if (token.IsEmpty || token.Length > MaxTokenLength)
        {
            return null;
        }

        var maxBytes = Encoding.UTF8.GetMaxByteCount(token.Length);
        var rented = ArrayPool<byte>.Shared.Rent(maxBytes);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        try
        {
            var length = Encoding.UTF8.GetBytes(token, rented);
            SHA256.HashData(rented.AsSpan(0, length), hash);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(rented.AsSpan(0, maxBytes));
            ArrayPool<byte>.Shared.Return(rented);
        }

        TunnelPrincipal? match = null;
        foreach (var entry in _entries)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, entry.Hash))
            {
                match = entry.Principal;
            }
        }

        return match;
    }

    /// <summary>The value to configure for <paramref name="token"/>: lower-case hex SHA-256 of its UTF-8 bytes.</summary>
    public static string HashToken(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private readonly record struct Entry(byte[] Hash, TunnelPrincipal Principal);
}
