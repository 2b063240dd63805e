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
}
