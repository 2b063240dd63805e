using Microsoft.Extensions.Options;

namespace Tunnel2.Client.Uplink;

/// <summary>Prints the public URL on standard output whenever the session changes: the one line a user needs.</summary>
internal sealed class SessionAnnouncer(IOptions<TunnelClientOptions> options)
{
    private readonly Lock _lock = new();
    private Guid _announced;

    public void Announce(Guid sessionId, string? publicUrl, string? tcpPorts = null)
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
        var url = publicUrl ?? $"{o.ServerList[0].TrimEnd('/')}/session/{sessionId:D}/";
        var routes = string.Concat(o.Routes.Select(r => $", {r.Key} -> {r.Value}"));
        Console.Out.WriteLine($"Tunnel2: forwarding {url} -> {o.Backend}{routes}");
        if (o.TcpServices.Count > 0)
        {
            var host = new Uri(o.ServerList[0]).Host;
            var assigned = (tcpPorts ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(pair => pair.Split('='))
                .Where(pair => pair.Length == 2)
                .ToDictionary(pair => pair[0], pair => pair[1], StringComparer.Ordinal);
            foreach (var (name, local) in o.TcpServices)
            {
                Console.Out.WriteLine(assigned.TryGetValue(name, out var port)
                    ? $"Tunnel2: tcp {name} {host}:{port} -> {local}"
                    : $"Tunnel2: tcp {name} was not opened by the server (TCP tunnels off, or no free port) -> {local}");
            }
        }

        Console.Out.Flush();
    }
}
