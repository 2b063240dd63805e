using System.Diagnostics;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests.Infrastructure;

/// <summary>
/// The real TunnelClient executable (from the test output folder) in a child process, so a test can kill it the way
/// an operator or the OOM killer would: SIGKILL, no goodbye on the wire.
/// </summary>
internal sealed class ClientProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ClientProcess(Process process)
    {
        _process = process;
    }

    public int ExitCode => _process.ExitCode;

    public static ClientProcess Start(TestTunnel tunnel, int uplinks)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "TunnelClient.dll"));

        // Everything through the environment: the token never goes on the command line.
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["TUNNEL2_TOKEN"] = tunnel.Token;
        start.Environment["Tunnel__Server"] = tunnel.ServerUrl.ToString();
        start.Environment["Tunnel__Backend"] = tunnel.BackendUrl.ToString();
        start.Environment["Tunnel__Session"] = tunnel.SessionId.ToString("D");
        start.Environment["Tunnel__Uplinks"] = uplinks.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Tunnel__ReconnectBaseDelay"] = "00:00:00.050";
        start.Environment["Tunnel__ReconnectMaxDelay"] = "00:00:00.500";
        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start TunnelClient.");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new ClientProcess(process);
    }

    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync().DefaultTimeout();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            await KillAsync();
        }

        _process.Dispose();
    }
}
