using System.Diagnostics;
using System.Net.Sockets;
using Tunnel2.Testing;

namespace Tunnel2.FaultProxy.Tests;

/// <summary>The console entry as a script drives it: start, read the address, send commands on stdin, quit.</summary>
public sealed class ConsoleEntryTests
{
    [Fact]
    public async Task ConsoleEntry_PrintsAddress_ForwardsAndObeysCommands()
    {
        using var target = new LoopbackServer();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "FaultProxy.dll"));
        start.ArgumentList.Add("--target");
        start.ArgumentList.Add(target.EndPoint.ToString());
        start.ArgumentList.Add("--downstream");
        start.ArgumentList.Add("limit-data=3");
        using var process = Process.Start(start)!;
        try
        {
            var banner = await process.StandardOutput.ReadLineAsync().DefaultTimeout();
            Assert.NotNull(banner);
            Assert.StartsWith("listening 127.0.0.1:", banner, StringComparison.Ordinal);
            var address = System.Net.IPEndPoint.Parse(banner["listening ".Length..banner.IndexOf(' ', "listening ".Length)]);

            await process.StandardInput.WriteLineAsync("upstream latency=1ms");
            Assert.Equal("upstream: latency=1ms jitter=0ms", await process.StandardOutput.ReadLineAsync().DefaultTimeout());

            using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(address).DefaultTimeout();
            using var server = await target.AcceptAsync();
            await server.SendAllAsync("hello"u8.ToArray());
            var (received, error) = await client.ReceiveToEndAsync();

            // The --downstream limit-data=3 from the command line: three bytes, then an orderly close.
            Assert.Equal(3, received);
            Assert.Null(error);

            await process.StandardInput.WriteLineAsync("quit");
            await process.WaitForExitAsync().DefaultTimeout();
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }

    [Fact]
    public async Task ConsoleEntry_WithoutTarget_ExitsWithUsage()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "FaultProxy.dll"));
        using var process = Process.Start(start)!;

        var error = await process.StandardError.ReadToEndAsync().DefaultTimeout();
        await process.WaitForExitAsync().DefaultTimeout();

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("--target HOST:PORT is required", error, StringComparison.Ordinal);
    }
}
