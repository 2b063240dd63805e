using Microsoft.Extensions.Options;

namespace Tunnel2.Client.Uplink;

/// <summary>Prints the public URL on standard output whenever the session changes: the one line a user needs.</summary>
internal sealed class SessionAnnouncer(IOptions<TunnelClientOptions> options)
{
    private readonly Lock _lock = new();
    private Guid _announced;

    public void Announce(Guid sessionId, string? publicUrl)
    {
        lock (_lock)
        {
            if (_announced == sessionId)
            {
                return;
            }

            _announced = sessionId;
        }

        var o = options.Value;
        var url = publicUrl ?? $"{o.Server.TrimEnd('/')}/session/{sessionId:D}/";
        var routes = string.Concat(o.Routes.Select(r => $", {r.Key} -> {r.Value}"));
        Console.Out.WriteLine($"Tunnel2: forwarding {url} -> {o.Backend}{routes}");
        Console.Out.Flush();
    }
}
