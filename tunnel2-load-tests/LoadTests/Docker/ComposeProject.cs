using Docker.DotNet;
using Docker.DotNet.Models;

namespace Tunnel2.LoadTests.Docker;

/// <summary>A service's container, as the Engine API lists it.</summary>
internal sealed record ServiceContainer(string Service, string Id, string Name, string State);

/// <summary>The daemon could not be reached, or the compose project is not there: the run cannot start.</summary>
internal sealed class DockerUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The containers of one docker-compose project, through the Docker Engine API (Docker.DotNet). Compose itself
/// (creating containers from the YAML) stays with the docker-compose CLI; this starts, stops, restarts and watches the
/// containers it created, found by their compose labels.
/// </summary>
internal sealed class ComposeProject : IDisposable
{
    private readonly DockerClientConfiguration _configuration;
    private readonly TimeProvider _time;

    private ComposeProject(DockerClientConfiguration configuration, DockerClient client, string project, TimeProvider time)
    {
        _configuration = configuration;
        Client = client;
        Project = project;
        _time = time;
    }

    public DockerClient Client { get; }

    public string Project { get; }

    /// <summary>Connects and pings the daemon (the ping bounded by <paramref name="timeout"/>).</summary>
    /// <exception cref="DockerUnavailableException">The daemon does not answer.</exception>
    public static async Task<ComposeProject> ConnectAsync(Uri endpoint, string project, TimeProvider time, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        // Requests other than the ping may take long: a stop or restart waits for the container's grace period.
        var configuration = new DockerClientConfiguration(endpoint, defaultTimeout: TimeSpan.FromMinutes(2));
        var client = configuration.CreateClient();
        try
        {
            using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bounded.CancelAfter(timeout);
            await client.System.PingAsync(bounded.Token);
            return new ComposeProject(configuration, client, project, time);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            configuration.Dispose();
            throw new DockerUnavailableException($"the Docker daemon at {endpoint} does not answer ({e.GetType().Name}: {e.Message})", e);
        }
    }

    /// <summary>The project's service containers (replica 1 of each service; one-off containers left out).</summary>
    public async Task<IReadOnlyDictionary<string, ServiceContainer>> ListAsync(CancellationToken cancellationToken)
    {
        var containers = await Client.Containers.ListContainersAsync(
            new ContainersListParameters { All = true, Filters = ComposeLabels.ProjectFilter(Project) }, cancellationToken);
        var services = new Dictionary<string, ServiceContainer>(StringComparer.Ordinal);
        foreach (var container in containers.OrderBy(c => ComposeLabels.NumberOf(c.Labels)))
        {
            if (ComposeLabels.ServiceOf(container.Labels, Project) is { } service && !services.ContainsKey(service))
            {
                var name = container.Names?.FirstOrDefault()?.TrimStart('/') ?? container.ID[..Math.Min(12, container.ID.Length)];
                services[service] = new ServiceContainer(service, container.ID, name, container.State ?? "");
            }
        }

        return services;
    }

    /// <summary>Starts the containers that are not running, backends first; returns the services it started.</summary>
    public async Task<IReadOnlyList<string>> StartStoppedAsync(IReadOnlyDictionary<string, ServiceContainer> services, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(services);
        var started = new List<string>();
        foreach (var service in ComposeLabels.StartOrder(services.Keys))
        {
            var container = services[service];
            if (!string.Equals(container.State, "running", StringComparison.Ordinal))
            {
                await Client.Containers.StartContainerAsync(container.Id, new ContainerStartParameters(), cancellationToken);
                started.Add(service);
            }
        }

        return started;
    }

    /// <summary>Stops every container, the client first; each gets <paramref name="grace"/> before SIGKILL.</summary>
    public async Task StopAllAsync(IReadOnlyDictionary<string, ServiceContainer> services, TimeSpan grace, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(services);
        foreach (var service in ComposeLabels.StartOrder(services.Keys).Reverse())
        {
            await Client.Containers.StopContainerAsync(
                services[service].Id, new ContainerStopParameters { WaitBeforeKillSeconds = (uint)grace.TotalSeconds }, cancellationToken);
        }
    }

    /// <summary>Restarts one container (SIGTERM, then SIGKILL after <paramref name="grace"/>) and returns when it runs again.</summary>
    public Task RestartAsync(ServiceContainer container, TimeSpan grace, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        return Client.Containers.RestartContainerAsync(
            container.Id, new ContainerRestartParameters { WaitBeforeKillSeconds = (uint)grace.TotalSeconds }, cancellationToken);
    }

    /// <summary>
    /// Waits until the container runs and its health check passes (or it has none); polls every 250 ms for at most
    /// <paramref name="timeout"/>. Returns null when healthy, else what it was last (e.g. "unhealthy", "exited (3)").
    /// </summary>
    public async Task<string?> WaitHealthyAsync(ServiceContainer container, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(container);
        var start = _time.GetTimestamp();
        var last = "unknown";
        while (true)
        {
            var inspect = await Client.Containers.InspectContainerAsync(container.Id, cancellationToken);
            var state = inspect.State;
            if (state is null)
            {
                last = "no state";
            }
            else if (!state.Running)
            {
                last = state.Restarting ? "restarting" : $"{state.Status} ({state.ExitCode})";
            }
            else if (state.Health is null || string.IsNullOrEmpty(state.Health.Status) || state.Health.Status == "healthy")
            {
                return null;
            }
            else
            {
                last = state.Health.Status;
            }

            if (_time.GetElapsedTime(start) >= timeout)
            {
                return last;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), _time, cancellationToken);
        }
    }

    public void Dispose()
    {
        Client.Dispose();
        _configuration.Dispose();
    }
}
