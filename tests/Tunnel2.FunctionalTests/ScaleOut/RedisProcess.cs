using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Tunnel2.Testing;
using Xunit;

namespace Tunnel2.FunctionalTests.ScaleOut;

/// <summary>A fact that needs a real <c>redis-server</c>; skipped, with the reason, on a machine without one.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute()
    {
        if (RedisProcess.ServerPath is null)
        {
            Skip = "redis-server is not installed (apt-get install redis-server; tests/run-tests.sh installs it).";
        }
    }
}

/// <summary>
/// A throw-away <c>redis-server</c> owned by a test: loopback only, a free port, no persistence, its own temporary
/// directory; started and stopped (SIGKILL) like an operator or a crash would, and restarted on the same port.
/// </summary>
internal sealed class RedisProcess : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tunnel2-redis-").FullName;
    private Process? _process;

    private RedisProcess(int port)
    {
        Port = port;
    }

    /// <summary>Where redis-server is, or null when it is not installed.</summary>
    public static string? ServerPath { get; } = FindServer();

    public int Port { get; }

    /// <summary>StackExchange.Redis connection string for this server.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public static async Task<RedisProcess> StartAsync()
    {
        // A port the system just handed out and released; redis binds it a moment later (a tiny, accepted race).
        var redis = new RedisProcess(FreePort());
        await redis.StartProcessAsync();
        return redis;
    }

    /// <summary>Kills the server (SIGKILL, no goodbye); every key is gone since nothing is persisted.</summary>
    public async Task KillAsync()
    {
        if (_process is { } process)
        {
            _process = null;
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().DefaultTimeout();
            process.Dispose();
        }
    }

    /// <summary>Starts the server again on the same port, empty.</summary>
    public Task RestartAsync() => StartProcessAsync();

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo(ServerPath ?? throw new InvalidOperationException("redis-server is not installed."))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        foreach (var argument in new[]
        {
            "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--bind", "127.0.0.1",
            "--save", string.Empty,
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", _directory,
        })
        {
            start.ArgumentList.Add(argument);
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                ready.TrySetException(new InvalidOperationException("redis-server exited: " + string.Join(Environment.NewLine, output)));
                return;
            }

            output.Enqueue(e.Data);
            if (e.Data.Contains("Ready to accept connections", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                output.Enqueue(e.Data);
            }
        };

        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        await ready.Task.DefaultTimeout();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string? FindServer()
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin").Append("/usr/local/bin"))
        {
            var candidate = Path.Combine(directory, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
