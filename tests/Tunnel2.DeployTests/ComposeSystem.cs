using System.Net;
using System.Net.Sockets;

namespace Tunnel2.DeployTests;

/// <summary>
/// The compose dev system (tunnel2-deploy/dev/docker-compose.yml) under its own project name and on free host ports,
/// so it runs beside a developer's own <c>tunnel2dev</c> project. Driven with the docker and docker-compose CLIs;
/// every call has a time limit. Disposing runs <c>docker-compose down</c>.
/// </summary>
internal sealed class ComposeSystem : IAsyncDisposable
{
    public const string Project = "tunnel2deploytest";
    public static readonly string[] Images = ["tunnel2/tunnel-server:dev", "tunnel2/tunnel-client:dev", "tunnel2/test-backend:dev", "tunnel2/httpbin:dev"];
    private static readonly TimeSpan ShortCommand = TimeSpan.FromSeconds(30);
    private readonly string _composeFile;
    private readonly Dictionary<string, string> _environment;
    private bool _up;

    private ComposeSystem(string composeFile, int tunnelPort, int backendPort, int httpbinPort)
    {
        _composeFile = composeFile;
        TunnelPort = tunnelPort;
        BackendPort = backendPort;
        HttpbinPort = httpbinPort;
        _environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["TUNNEL2_TUNNEL_PORT"] = tunnelPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["TUNNEL2_BACKEND_PORT"] = backendPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["TUNNEL2_HTTPBIN_PORT"] = httpbinPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["COMPOSE_PROJECT_NAME"] = Project,
        };
    }

    public int TunnelPort { get; }

    public int BackendPort { get; }

    public int HttpbinPort { get; }

    /// <summary>Checks what the test needs; returns the system, or null and why the test cannot run here.</summary>
    public static async Task<(ComposeSystem? System, string? SkipReason)> PrepareAsync()
    {
        var composeFile = FindComposeFile();
        if (composeFile is null)
        {
            return (null, $"tunnel2-deploy/dev/docker-compose.yml not found above {AppContext.BaseDirectory}");
        }

        var info = await ProcessRunner.RunAsync("docker", ["info", "--format", "{{.ServerVersion}}"], ShortCommand);
        if (info is null)
        {
            return (null, "the docker CLI is not installed (apt-get install docker.io docker-compose; see tunnel2-deploy/dev/README.md)");
        }

        if (!info.Succeeded || info.Stdout.Trim().Length == 0)
        {
            return (null, $"the Docker daemon is not reachable: `docker info` exited {info.ExitCode}: {info.Tail()} (start it: systemctl start docker, or dockerd &)");
        }

        var compose = await ProcessRunner.RunAsync("docker-compose", ["version", "--short"], ShortCommand);
        if (compose is null || !compose.Succeeded)
        {
            return (null, "docker-compose is not installed (apt-get install docker-compose)");
        }

        var missing = new List<string>();
        foreach (var image in Images)
        {
            if (await ProcessRunner.RunAsync("docker", ["image", "inspect", "--format", "{{.Id}}", image], ShortCommand) is not { Succeeded: true })
            {
                missing.Add(image);
            }
        }

        if (missing.Count > 0)
        {
            return (null, $"images not built: {string.Join(", ", missing)} (run tunnel2-deploy/dev/build-images.sh)");
        }

        var ports = FreePorts(3);
        var system = new ComposeSystem(composeFile, ports[0], ports[1], ports[2]);
        // A run that was killed may have left its containers behind.
        await system.ComposeAsync(["down", "--volumes", "--timeout", "5"], TimeSpan.FromSeconds(90));
        return (system, null);
    }

    /// <summary><c>docker-compose up -d</c>: returns when the client's dependencies are healthy and the client started.</summary>
    public async Task UpAsync()
    {
        _up = true;
        var result = await ComposeAsync(["up", "-d", "--no-build"], TimeSpan.FromMinutes(4));
        Assert.True(result.Succeeded, $"docker-compose up failed ({result.ExitCode}): {result.Tail(20)}\n{await LogsAsync()}");
    }

    /// <summary><c>docker-compose restart</c> of one service (SIGTERM, then SIGKILL after 15 s).</summary>
    public async Task RestartAsync(string service)
    {
        var result = await ComposeAsync(["restart", "--timeout", "15", service], TimeSpan.FromSeconds(90));
        Assert.True(result.Succeeded, $"docker-compose restart {service} failed ({result.ExitCode}): {result.Tail(20)}");
    }

    /// <summary>When the service's container (last) started, as Docker reports it.</summary>
    public async Task<string> StartedAtAsync(string service)
    {
        var id = (await ComposeAsync(["ps", "-q", service], ShortCommand)).Stdout.Trim();
        Assert.False(string.IsNullOrEmpty(id), $"no container for {service}");
        var inspect = await ProcessRunner.RunAsync("docker", ["inspect", "--format", "{{.State.StartedAt}} {{.State.Status}}", id], ShortCommand);
        Assert.NotNull(inspect);
        Assert.True(inspect.Succeeded, $"docker inspect {id} failed: {inspect.Tail()}");
        return inspect.Stdout.Trim();
    }

    /// <summary>The last lines of every service's log, for failure messages.</summary>
    public async Task<string> LogsAsync()
    {
        var logs = await ComposeAsync(["logs", "--no-color", "--tail", "40"], ShortCommand);
        return logs.Stdout + logs.Stderr;
    }

    public async ValueTask DisposeAsync()
    {
        if (_up)
        {
            _up = false;
            await ComposeAsync(["down", "--volumes", "--timeout", "20"], TimeSpan.FromMinutes(2));
        }
    }

    private async Task<ProcessResult> ComposeAsync(IEnumerable<string> arguments, TimeSpan timeout)
    {
        string[] prefix = ["--project-name", Project, "--file", _composeFile];
        return await ProcessRunner.RunAsync("docker-compose", [.. prefix, .. arguments], timeout, _environment, Path.GetDirectoryName(_composeFile))
            ?? throw new InvalidOperationException("docker-compose disappeared");
    }

    private static string? FindComposeFile()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tunnel2-deploy", "dev", "docker-compose.yml");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Distinct free ports on 127.0.0.1 (held together while chosen, then released for Docker to bind).</summary>
    private static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            listeners.ForEach(l => l.Stop());
        }
    }
}
