using System.CommandLine;
using Microsoft.Extensions.Options;
using Tunnel2.Client.Hosting;
using Tunnel2.Client.Uplink;

namespace Tunnel2.Client;

/// <summary>
/// <c>TunnelClient [--server URL]... [--backend URL] [--route /prefix=URL]... [--session ID] [--token-file PATH] [--uplinks N]</c>.
/// Flags override environment variables, which override appsettings.json.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var server = new Option<string[]>("--server") { Description = "TunnelServer base URL (default http://127.0.0.1:12000); repeat it for the nodes of a scale-out deployment." };
        var backend = new Option<string?>("--backend") { Description = "Backend for every path no --route matches; replaces configured routes." };
        var route = new Option<string[]>("--route") { Description = "Path prefix to a backend, e.g. /api=http://127.0.0.1:8080 (repeatable).", AllowMultipleArgumentsPerToken = false };
        var tcp = new Option<string[]>("--tcp") { Description = "Raw TCP service to expose, e.g. redis=127.0.0.1:6379 (repeatable)." };
        var session = new Option<string?>("--session") { Description = "Session id to request (GUID); granted if the token may have it." };
        var tokenFile = new Option<string?>("--token-file") { Description = $"File holding the uplink token. Or set {TunnelClientHost.TokenEnvironmentVariable}." };
        var uplinks = new Option<int?>("--uplinks") { Description = "Uplink connections to keep open (1-16, default 2)." };
        var maxConcurrent = new Option<int?>("--max-concurrent-requests") { Description = "Requests forwarded to backends at once (default 512)." };
        var insecure = new Option<bool>("--dangerous-accept-any-server-certificate") { Description = "Skip server certificate validation. Development only." };
        var token = new Option<string?>("--token") { Description = "Not accepted: a token on the command line is visible to every user (ps). Use --token-file or TUNNEL2_TOKEN.", Hidden = true };

        var root = new RootCommand("Tunnel2 client: dials a TunnelServer and forwards its session's requests to a private backend.")
        {
            server, backend, route, tcp, session, tokenFile, uplinks, maxConcurrent, insecure, token,
        };

        root.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(token) is not null)
            {
                await Console.Error.WriteLineAsync($"--token is not accepted: a token in the command line is visible to every local user. Use --token-file <path> or set {TunnelClientHost.TokenEnvironmentVariable}.");
                return ExitCodes.InvalidConfiguration;
            }

            var routes = parse.GetValue(route) ?? [];
            var parsedRoutes = new List<KeyValuePair<string, string>>();
            foreach (var r in routes)
            {
                var separator = r.IndexOf('=', StringComparison.Ordinal);
                if (separator <= 0)
                {
                    await Console.Error.WriteLineAsync($"--route '{r}' must look like /prefix=http://host:port.");
                    return ExitCodes.InvalidConfiguration;
                }

                parsedRoutes.Add(new(r[..separator], r[(separator + 1)..]));
            }

            var tcpServices = new List<KeyValuePair<string, string>>();
            foreach (var t in parse.GetValue(tcp) ?? [])
            {
                var separator = t.IndexOf('=', StringComparison.Ordinal);
                if (separator <= 0)
                {
                    await Console.Error.WriteLineAsync($"--tcp '{t}' must look like name=host:port.");
                    return ExitCodes.InvalidConfiguration;
                }

                tcpServices.Add(new(t[..separator], t[(separator + 1)..]));
            }

            void Overrides(TunnelClientOptions o)
            {
                foreach (var (name, endpoint) in tcpServices)
                {
                    o.TcpServices[name] = endpoint;
                }

                if (parse.GetValue(server) is { Length: > 0 } servers)
                {
                    o.Server = servers[0];
                    o.Servers.Clear();
                    if (servers.Length > 1)
                    {
                        o.Servers.AddRange(servers);
                    }
                }

                if (parse.GetValue(backend) is { } b)
                {
                    o.Backend = b;
                    o.Routes.Clear();
                }

                foreach (var (prefix, url) in parsedRoutes)
                {
                    o.Routes[prefix] = url;
                }

                if (parse.GetValue(session) is { } id)
                {
                    o.Session = id;
                }

                if (parse.GetValue(tokenFile) is { } file)
                {
                    o.TokenFile = file;
                    o.Token = null;
                }

                if (parse.GetValue(uplinks) is { } n)
                {
                    o.Uplinks = n;
                }

                if (parse.GetValue(maxConcurrent) is { } m)
                {
                    o.MaxConcurrentRequests = m;
                }

                if (parse.GetValue(insecure))
                {
                    o.DangerousAcceptAnyServerCertificate = true;
                }
            }

            IHost host;
            try
            {
                host = TunnelClientHost.Build(parse.UnmatchedTokens.ToArray(), Overrides);
                _ = host.Services.GetRequiredService<IOptions<TunnelClientOptions>>().Value;
            }
            catch (OptionsValidationException ex)
            {
                await Console.Error.WriteLineAsync("Invalid TunnelClient configuration:");
                foreach (var failure in ex.Failures)
                {
                    await Console.Error.WriteLineAsync($"  - {failure}");
                }

                return ExitCodes.InvalidConfiguration;
            }

            var exit = host.Services.GetRequiredService<ClientExit>();
            await host.RunAsync(cancellationToken);
            return exit.Code;
        });

        return await root.Parse(args).InvokeAsync();
    }
}
