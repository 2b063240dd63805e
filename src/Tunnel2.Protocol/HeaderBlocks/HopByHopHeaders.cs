using System.Collections.Frozen;

namespace Tunnel2.Protocol.HeaderBlocks;

/// <summary>
/// Fields that describe one connection, not the message (RFC 9110 §7.6.1), so neither end of the tunnel forwards
/// them; plus the ones a proxy replaces or must never pass on (YARP's RequestUtilities list, reliability.md §1.1).
/// Fields named in <c>Connection</c> are removed as well, by the caller.
/// </summary>
public static class HopByHopHeaders
{
    private static readonly FrozenSet<string> s_hopByHop = FrozenSet.Create(
        StringComparer.OrdinalIgnoreCase,
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Proxy-Authenticate",
        "Proxy-Authentication-Info",
        "Proxy-Authorization",
        "Proxy-Features",
        "Proxy-Instruction",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "HTTP2-Settings",
        "Alt-Svc",
        "Close");

    private static readonly FrozenSet<string>.AlternateLookup<ReadOnlySpan<char>> s_hopByHopSpans = s_hopByHop.GetAlternateLookup<ReadOnlySpan<char>>();

    private static readonly FrozenSet<string> s_replacedByEntry = FrozenSet.Create(
        StringComparer.OrdinalIgnoreCase,
        "Host",
        "Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "X-Forwarded-Prefix");

    /// <summary>True for fields that belong to one connection and are never forwarded, in either direction.</summary>
    public static bool IsHopByHop(string name) => s_hopByHop.Contains(name);

    /// <summary>True for hop-by-hop fields, the name given as bytes (as parsed from HTTP/1.1). Allocates nothing.</summary>
    public static bool IsHopByHop(ReadOnlySpan<byte> name)
    {
        // The longest entry is "Proxy-Authentication-Info" (25); longer names are never hop-by-hop.
        const int MaxLength = 32;
        if (name.IsEmpty || name.Length > MaxLength)
        {
            return false;
        }

        Span<char> chars = stackalloc char[MaxLength];
        return System.Text.Ascii.ToUtf16(name, chars, out var written) == System.Buffers.OperationStatus.Done
            && s_hopByHopSpans.Contains(chars.Slice(0, written));
    }

    /// <summary>
    /// True for request fields the public entry replaces: Host travels as X-Forwarded-Host (the backend gets its own
    /// Host), Forwarded is dropped, and X-Forwarded-* are set by the entry, never appended to (YARP's default, Set).
    /// </summary>
    public static bool IsReplacedByEntry(string name) => s_replacedByEntry.Contains(name);

    /// <summary>
    /// True for an <c>Upgrade</c> value the tunnel passes through as an opaque stream (WebSocket and other protocols).
    /// <c>h2c</c> never is: forwarding it lets a client speak HTTP/2 to the backend past the entry (h2c smuggling,
    /// reliability.md D19).
    /// </summary>
    public static bool IsForwardableUpgrade(string? upgrade)
        => !string.IsNullOrWhiteSpace(upgrade) && !upgrade.Contains("h2c", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// True for an <c>Upgrade</c> value, as bytes, that <see cref="IsForwardableUpgrade(string?)"/> would accept.
    /// </summary>
    public static bool IsForwardableUpgrade(ReadOnlySpan<byte> upgrade)
        => upgrade.ContainsAnyExcept((byte)' ', (byte)'\t') && !ContainsIgnoreCase(upgrade, "h2c"u8);

    /// <summary>True when a <c>Connection</c> field value, as bytes, nominates <paramref name="name"/> (ASCII case-insensitive).</summary>
    public static bool IsNominated(ReadOnlySpan<byte> connectionValue, ReadOnlySpan<byte> name)
    {
        while (!connectionValue.IsEmpty)
        {
            var comma = connectionValue.IndexOf((byte)',');
            var token = comma < 0 ? connectionValue : connectionValue.Slice(0, comma);
            if (System.Text.Ascii.EqualsIgnoreCase(token.Trim(" \t"u8), name))
            {
                return true;
            }

            connectionValue = comma < 0 ? default : connectionValue.Slice(comma + 1);
        }

        return false;
    }

    /// <summary>True when a <c>Connection</c> field value nominates <paramref name="name"/>.</summary>
    public static bool IsNominated(ReadOnlySpan<char> connectionValue, ReadOnlySpan<char> name)
    {
        foreach (var range in connectionValue.Split(','))
        {
            if (connectionValue[range].Trim().Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static bool ContainsIgnoreCase(ReadOnlySpan<byte> value, ReadOnlySpan<byte> part)
    {
        for (var i = 0; i + part.Length <= value.Length; i++)
        {
            if (System.Text.Ascii.EqualsIgnoreCase(value.Slice(i, part.Length), part))
            {
                return true;
            }
        }

        return false;
    }
}
