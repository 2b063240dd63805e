using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Tunnel2.Server.ScaleOut;

/// <summary>
/// The request and response fields nodes use among themselves (docs/adr/0007-scale-out-directory.md). A request from a
/// node carries the shared node secret in <c>Tunnel2-Node</c> and the original entry's view of the public client in
/// <c>Tunnel2-Forwarded: for=&lt;address&gt;;proto=&lt;scheme&gt;</c>. Only with the right secret does the owning node
/// believe it (X-Forwarded-For/Proto then name the public client, not the forwarding node) and never forward the
/// request again; without it both fields are dropped like any public header and never reach a backend.
/// </summary>
internal sealed class NodeHeaders
{
    /// <summary>Request field: the node secret.</summary>
    public const string Node = "Tunnel2-Node";

    /// <summary>Request field: <c>for=&lt;address&gt;;proto=&lt;scheme&gt;</c> as the first node saw the public request.</summary>
    public const string Forwarded = "Tunnel2-Forwarded";

    /// <summary>
    /// Response field on a 503 from a node that could not serve a forwarded request without touching it (it does not
    /// hold the session, or is draining): the forwarding node may try another holder.
    /// </summary>
    public const string Refused = "Tunnel2-Node-Refused";

    private readonly byte[]? _secret;

    public NodeHeaders(IOptions<TunnelServerOptions> options)
    {
        var directory = options.Value.Directory;
        Secret = directory.Enabled && !string.IsNullOrEmpty(directory.NodeSecret) ? directory.NodeSecret : null;
        _secret = Secret is null ? null : Encoding.UTF8.GetBytes(Secret);
    }

    /// <summary>The shared secret, or null when scale-out is off.</summary>
    public string? Secret { get; }

    /// <summary>True for the internal request fields, which the entry never passes to a backend or another node.</summary>
    public static bool IsInternal(string name)
        => name.Length >= Node.Length && name.StartsWith("Tunnel2-", StringComparison.OrdinalIgnoreCase)
            && (name.Equals(Node, StringComparison.OrdinalIgnoreCase) || name.Equals(Forwarded, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The public client's address and scheme when <paramref name="request"/> was forwarded by a node that knows the
    /// secret; false for every public request.
    /// </summary>
    public bool TryGetOrigin(HttpRequest request, out string? forwardedFor, out string? proto)
    {
        forwardedFor = null;
        proto = null;
        if (_secret is null)
        {
            return false;
        }

        var headers = request.Headers;
        if (!headers.TryGetValue(Node, out var presented) || presented.Count != 1 || !IsSecret(presented[0]))
        {
            return false;
        }

        var value = headers[Forwarded];
        if (value.Count == 1)
        {
            Parse(value[0], out forwardedFor, out proto);
        }

        return true;
    }

    /// <summary>The <c>Tunnel2-Forwarded</c> value describing <paramref name="context"/>'s public client.</summary>
    public static string Describe(HttpContext context)
    {
        var remote = context.Connection.RemoteIpAddress;
        if (remote is { IsIPv4MappedToIPv6: true })
        {
            remote = remote.MapToIPv4();
        }

        return $"for={remote};proto={context.Request.Scheme}";
    }

    internal static void Parse(string? value, out string? forwardedFor, out string? proto)
    {
        forwardedFor = null;
        proto = null;
        var span = value.AsSpan();
        foreach (var range in span.Split(';'))
        {
            var part = span[range].Trim();
            if (part.StartsWith("for=", StringComparison.OrdinalIgnoreCase) && part.Length > 4)
            {
                forwardedFor = part[4..].ToString();
            }
            else if (part.StartsWith("proto=", StringComparison.OrdinalIgnoreCase) && part[6..] is "http" or "https")
            {
                proto = part[6..].ToString();
            }
        }

        if (forwardedFor is not null && !System.Net.IPAddress.TryParse(forwardedFor, out _))
        {
            forwardedFor = null;
        }
    }

    private bool IsSecret(string? presented)
    {
        if (presented is null || _secret is null)
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[256];
        if (presented.Length > buffer.Length || !Encoding.UTF8.TryGetBytes(presented, buffer, out var written))
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(buffer[..written], _secret);
    }
}
