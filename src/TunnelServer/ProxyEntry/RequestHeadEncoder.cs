using System.Net;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Server.ProxyEntry;

/// <summary>
/// Writes the request head the backend will see: end-to-end fields as received, minus hop-by-hop fields and those
/// named in <c>Connection</c>, plus X-Forwarded-For/Proto/Host/Prefix set by the tunnel (never appended to a
/// client's own values, reliability.md D16/D18). For a request another node forwarded (scale-out), X-Forwarded-For and
/// -Proto describe the public client as the first node saw it, not the forwarding node; the internal node fields are
/// never passed on (<see cref="ScaleOut.NodeHeaders"/>).
/// </summary>
internal static class RequestHeadEncoder
{
    /// <param name="upgrade">The <c>Upgrade</c> value to forward for an upgrade request (WebSocket), else null.</param>
    /// <param name="originFor">The public client's address from an authenticated node (scale-out), or null for the connection's.</param>
    /// <param name="originProto">The public request's scheme from an authenticated node, or null for this request's.</param>
    /// <returns>False when the head does not fit the buffer.</returns>
    public static bool Write(ref HeaderBlockWriter writer, HttpContext context, ReadOnlySpan<char> forwardPrefix, string? upgrade, string? originFor = null, string? originProto = null)
    {
        var request = context.Request;
        var headers = request.Headers;
        var connectionValue = RequestHeadRecording.ConnectionField(context);
        foreach (var header in headers)
        {
            var name = header.Key;
            if (HopByHopHeaders.IsHopByHop(name) || HopByHopHeaders.IsReplacedByEntry(name) || ScaleOut.NodeHeaders.IsInternal(name)
                || (connectionValue is not null && HopByHopHeaders.IsNominated(connectionValue, name)))
            {
                continue;
            }

            foreach (var value in header.Value)
            {
                if (writer.WriteField(name, value) == HeaderFieldResult.Overflow)
                {
                    return false;
                }
            }
        }

        var remote = context.Connection.RemoteIpAddress;
        if (originFor is not null)
        {
            writer.WriteField("X-Forwarded-For", originFor);
        }
        else if (remote is not null)
        {
            if (remote.IsIPv4MappedToIPv6)
            {
                remote = remote.MapToIPv4();
            }

            Span<char> address = stackalloc char[64];
            if (remote.TryFormat(address, out var written))
            {
                writer.WriteField("X-Forwarded-For", address.Slice(0, written));
            }
        }

        writer.WriteField("X-Forwarded-Proto", originProto ?? request.Scheme);
        var host = headers.Host;
        if (host.Count > 0)
        {
            writer.WriteField("X-Forwarded-Host", host.ToString());
        }

        writer.WriteField("X-Forwarded-Prefix", forwardPrefix);
        if (upgrade is not null)
        {
            // Hop-by-hop, so removed above; an upgrade is the one exchange that needs them end to end.
            writer.WriteField("Connection", "Upgrade");
            writer.WriteField("Upgrade", upgrade);
        }

        return !writer.Overflowed;
    }
}
