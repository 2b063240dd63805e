using Tunnel2.Server.Hosting;

namespace Tunnel2.Server;

public static class Program
{
    public static Task Main(string[] args) => TunnelServerHost.Build(args).RunAsync();
}
