using System.Globalization;
using Spectre.Console;
using Tunnel2.LoadTests.Resources;
using Tunnel2.LoadTests.Run;

namespace Tunnel2.LoadTests.Docker;

/// <summary>
/// <c>run --docker</c>: before the probe, makes sure the compose project's containers run and are healthy; during the
/// run, samples their stats and (with <c>--restart-client-at</c>) restarts the tunnel client once; at the end, adds the
/// container samples to the report's resources, the restart to its notes, and stops the containers if asked to.
/// </summary>
internal sealed class DockerRunSession : IAsyncDisposable
{
    private static readonly TimeSpan RestartGrace = TimeSpan.FromSeconds(10);
    private readonly DockerRunSettings _settings;
    private readonly ComposeProject _project;
    private readonly IReadOnlyDictionary<string, ServiceContainer> _services;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _notes = [];
    private ContainerStatsSampler? _sampler;
    private Task _restart = Task.CompletedTask;
    private long _runOrigin;

    private DockerRunSession(DockerRunSettings settings, ComposeProject project, IReadOnlyDictionary<string, ServiceContainer> services, TimeProvider time, Action<string> log)
    {
        _settings = settings;
        _project = project;
        _services = services;
        _time = time;
        _log = log;
    }

    /// <summary>
    /// <see cref="StartAsync"/>, printing progress on <paramref name="console"/>; null (after printing why) when the
    /// daemon, the project or a healthy container is missing.
    /// </summary>
    public static async Task<DockerRunSession?> TryStartAsync(DockerRunSettings settings, TimeProvider time, IAnsiConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(console);
        void Log(string line) => console.MarkupLine($"  [grey]docker: {Markup.Escape(line)}[/]");
        try
        {
            return await StartAsync(settings, time, Log, cancellationToken);
        }
        catch (DockerUnavailableException e)
        {
            console.MarkupLine($"[red]error:[/] --docker: {Markup.Escape(e.Message)}");
            return null;
        }
    }

    /// <exception cref="DockerUnavailableException">No daemon, no containers, or a container that does not become healthy.</exception>
    public static async Task<DockerRunSession> StartAsync(DockerRunSettings settings, TimeProvider time, Action<string> log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(log);
        var project = await ComposeProject.ConnectAsync(settings.Endpoint, settings.Project, time, TimeSpan.FromSeconds(10), cancellationToken);
        try
        {
            var services = await project.ListAsync(cancellationToken);
            if (services.Count == 0)
            {
                throw new DockerUnavailableException(
                    $"no containers of compose project '{settings.Project}' at {settings.Endpoint}: bring the system up first (docker-compose -f tunnel2-deploy/dev/docker-compose.yml up -d)");
            }

            if (settings.RestartClientAt is not null && !services.ContainsKey(DockerRunSettings.ClientService))
            {
                throw new DockerUnavailableException($"--restart-client-at: compose project '{settings.Project}' has no {DockerRunSettings.ClientService} container");
            }

            var started = await project.StartStoppedAsync(services, cancellationToken);
            if (started.Count > 0)
            {
                log($"started {string.Join(", ", started)}");
            }

            foreach (var service in ComposeLabels.StartOrder(services.Keys))
            {
                if (await project.WaitHealthyAsync(services[service], settings.HealthTimeout, cancellationToken) is { } state)
                {
                    throw new DockerUnavailableException(
                        $"{service} ({services[service].Name}) is not healthy after {settings.HealthTimeout.TotalSeconds:0} s: {state} (docker-compose logs {service})");
                }
            }

            log($"compose project {settings.Project}: {string.Join(", ", ComposeLabels.StartOrder(services.Keys).Select(s => $"{s} ({services[s].Name})"))} running and healthy");
            return new DockerRunSession(settings, project, services, time, log);
        }
        catch (Exception e) when (e is not DockerUnavailableException and not OperationCanceledException)
        {
            project.Dispose();
            throw new DockerUnavailableException($"the Docker Engine API failed ({e.GetType().Name}: {e.Message})", e);
        }
        catch
        {
            project.Dispose();
            throw;
        }
    }

    /// <summary>Starts sampling and schedules the client restart, relative to the run's origin.</summary>
    public void Start(long runOrigin, Func<(int Stage, string Target)?> currentWindow)
    {
        _runOrigin = runOrigin;
        _sampler = new ContainerStatsSampler(_project, ComposeLabels.StartOrder(_services.Keys).Select(s => _services[s]).ToList(), _time, runOrigin, currentWindow);
        _sampler.Start();
        if (_settings.RestartClientAt is { } at)
        {
            _restart = RestartClientAsync(at, _stop.Token);
        }
    }

    /// <summary>Ends sampling, adds the containers' samples and the restart notes to <paramref name="result"/>, stops the containers if asked.</summary>
    public async Task FinishAsync(RunResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        await _stop.CancelAsync();
        await _restart;
        if (_sampler is not null)
        {
            var containers = await _sampler.StopAsync();
            // The containers stand in for the processes whose PIDs a --docker run does not have.
            result.Resources = new ResourceReport(
                [.. result.Resources.Processes.Where(p => p.Pid is not null || p.Sampled), .. containers.Processes],
                [.. result.Resources.Samples, .. containers.Samples]);
        }

        result.Notes.AddRange(_notes);
        if (_settings.StopAfter)
        {
            _log("stopping the compose project's containers (--docker-stop)");
            // Also after Ctrl-C: the containers get their grace period, bounded by Docker.
            await _project.StopAllAsync(_services, RestartGrace, CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _restart;
        if (_sampler is not null)
        {
            await _sampler.DisposeAsync();
        }

        _project.Dispose();
        _stop.Dispose();
    }

    private double RunTime() => _time.GetElapsedTime(_runOrigin).TotalSeconds;

    private async Task RestartClientAsync(TimeSpan at, CancellationToken cancellationToken)
    {
        var client = _services[DockerRunSettings.ClientService];
        try
        {
            var wait = at - _time.GetElapsedTime(_runOrigin);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, _time, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            _notes.Add(string.Create(CultureInfo.InvariantCulture, $"Docker: the tunnel_client restart planned at {at.TotalSeconds:0.#} s did not happen: the run ended at {RunTime():0.#} s."));
            return;
        }

        var issued = RunTime();
        _log(string.Create(CultureInfo.InvariantCulture, $"restarting {client.Service} ({client.Name}) at {issued:0.0} s"));
        try
        {
            // Not cancelled with the run: a restart half done would leave the client down.
            await _project.RestartAsync(client, RestartGrace, CancellationToken.None);
            var running = RunTime();
            var state = await _project.WaitHealthyAsync(client, _settings.HealthTimeout, CancellationToken.None);
            var healthy = RunTime();
            var note = state is null
                ? string.Create(CultureInfo.InvariantCulture,
                    $"Docker: restarted {client.Service} at {issued:0.0} s; running again at {running:0.0} s (+{running - issued:0.0} s); its health check (a request through the tunnel, every 5 s) passed at {healthy:0.0} s (+{healthy - issued:0.0} s). Failures around that time are the reconnect.")
                : string.Create(CultureInfo.InvariantCulture,
                    $"Docker: restarted {client.Service} at {issued:0.0} s; running again at {running:0.0} s, but NOT healthy after {_settings.HealthTimeout.TotalSeconds:0} s ({state}).");
            _notes.Add(note);
            _log(note["Docker: ".Length..]);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var note = string.Create(CultureInfo.InvariantCulture, $"Docker: restarting {client.Service} at {issued:0.0} s failed: {e.GetType().Name}: {e.Message}");
            _notes.Add(note);
            _log(note);
        }
    }
}
