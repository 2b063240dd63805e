namespace Tunnel2.Server.ProxyEntry;

internal enum ProxyTargetStatus
{
    /// <summary>Not a /session/ request: the next middleware handles it.</summary>
    NotTunnel,

    Ok,

    /// <summary>Under /session/ but the id is not a session id: answered like an unknown session (404).</summary>
    BadSessionId,

    /// <summary>The path has dot-segments, which would route differently after normalisation (reliability.md D12).</summary>
    DotSegments,
}

/// <summary>
/// Splits the raw request target <c>/session/{id}/{rest}?{query}</c>. The tunnel routes on the raw target and
/// forwards <c>/{rest}?{query}</c> byte for byte, so encoded characters such as <c>%2F</c> reach the backend
/// unchanged and nothing is decoded twice (docs/adr/0004-raw-target-forwarding.md).
/// </summary>
internal readonly ref struct ProxyTarget
{
    public const string Prefix = "/session/";

    private ProxyTarget(Guid sessionId, ReadOnlySpan<char> forwardPrefix, ReadOnlySpan<char> target)
    {
        SessionId = sessionId;
        ForwardPrefix = forwardPrefix;
        Target = target;
    }

    public Guid SessionId { get; }

    /// <summary><c>/session/{id}</c>, as sent, for X-Forwarded-Prefix.</summary>
    public ReadOnlySpan<char> ForwardPrefix { get; }

    /// <summary>What the backend gets: <c>/{rest}?{query}</c>, always starting with '/'.</summary>
    public ReadOnlySpan<char> Target { get; }

    public static ProxyTargetStatus TryParse(string rawTarget, out ProxyTarget target)
    {
        target = default;
        var path = rawTarget.AsSpan();

        // Absolute-form (GET http://host/session/... HTTP/1.1): only the path counts, never the authority (reliability.md D22).
        if (!path.StartsWith('/'))
        {
            var scheme = path.IndexOf("://", StringComparison.Ordinal);
            if (scheme < 0)
            {
                return ProxyTargetStatus.NotTunnel;
            }

            var slash = path.Slice(scheme + 3).IndexOf('/');
            if (slash < 0)
            {
                return ProxyTargetStatus.NotTunnel;
            }

            path = path.Slice(scheme + 3 + slash);
        }

        if (!path.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return ProxyTargetStatus.NotTunnel;
        }

        var afterPrefix = path.Slice(Prefix.Length);
        var idLength = afterPrefix.IndexOfAny('/', '?');
        if (idLength < 0)
        {
            idLength = afterPrefix.Length;
        }

        if (!Sessions.SessionIds.TryParse(afterPrefix.Slice(0, idLength), out var sessionId))
        {
            return ProxyTargetStatus.BadSessionId;
        }

        var rest = afterPrefix.Slice(idLength);
        var queryStart = rest.IndexOf('?');
        var restPath = queryStart < 0 ? rest : rest.Slice(0, queryStart);
        if (HasDotSegment(restPath))
        {
            return ProxyTargetStatus.DotSegments;
        }

        // "/session/{id}" and "/session/{id}?q" forward as "/" and "/?q" (the rare case that allocates).
        var forward = rest.IsEmpty ? "/" : rest[0] == '?' ? ("/" + rest.ToString()).AsSpan() : rest;
        target = new ProxyTarget(sessionId, path.Slice(0, Prefix.Length + idLength), forward);
        return ProxyTargetStatus.Ok;
    }

    /// <summary>True when <paramref name="path"/> has a segment that is ".", "..", or one of those with dots written as %2E.</summary>
    internal static bool HasDotSegment(ReadOnlySpan<char> path)
    {
        foreach (var range in path.Split('/'))
        {
            var segment = path[range];
            if (segment.IsEmpty || segment.Length > 6)
            {
                continue;
            }

            var dots = 0;
            var i = 0;
            while (i < segment.Length)
            {
                if (segment[i] == '.')
                {
                    dots++;
                    i++;
                }
                else if (segment[i] == '%' && i + 2 < segment.Length && segment[i + 1] == '2' && (segment[i + 2] | 0x20) == 'e')
                {
                    dots++;
                    i += 3;
                }
                else
                {
                    dots = 0;
                    break;
                }
            }

            if (dots is 1 or 2)
            {
                return true;
            }
        }

        return false;
    }
}
