using System.CommandLine;
using Tunnel2.LoadTests.Profiles;

namespace Tunnel2.LoadTests.Docker;

/// <summary>How <c>run --docker</c> drives the compose dev system (tunnel2-deploy/dev).</summary>
/// <param name="Project">The compose project whose containers are the targets (tunnel2-deploy/dev/.env names it).</param>
/// <param name="Endpoint">The Docker Engine API: unix:///var/run/docker.sock, or DOCKER_HOST.</param>
/// <param name="RestartClientAt">Run time at which to restart the tunnel client's container (the reconnect scenario).</param>
/// <param name="StopAfter">Stop the project's containers when the run ends.</param>
/// <param name="HealthTimeout">How long containers may take to become healthy, at the start and after the restart.</param>
internal sealed record DockerRunSettings(
    string Project,
    Uri Endpoint,
    TimeSpan? RestartClientAt,
    bool StopAfter,
    TimeSpan HealthTimeout)
{
    public const string DefaultProject = "tunnel2dev";
    public const string ClientService = "tunnel_client";

    public static Uri DefaultEndpoint()
    {
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        return !string.IsNullOrWhiteSpace(host) && Uri.TryCreate(host, UriKind.Absolute, out var uri) ? uri : new Uri("unix:///var/run/docker.sock");
    }
}

/// <summary>The <c>run</c> command's Docker options; <see cref="Read"/> gives null without <c>--docker</c>.</summary>
internal sealed class DockerCliOptions
{
    private readonly Option<bool> _docker = new("--docker")
    {
        Description = "The targets are the containers of a docker-compose project (tunnel2-deploy/dev, started with docker-compose up -d): " +
            "start any that are stopped, wait until they are healthy, and sample their CPU and memory each second (Docker Engine API) into the report.",
    };

    private readonly Option<string> _project = new("--compose-project")
    {
        Description = "The compose project of --docker.",
        DefaultValueFactory = _ => DockerRunSettings.DefaultProject,
    };

    private readonly Option<string?> _endpoint = new("--docker-host")
    {
        Description = "Docker Engine endpoint (default: DOCKER_HOST, else unix:///var/run/docker.sock).",
    };

    private readonly Option<TimeSpan?> _restartClientAt = new("--restart-client-at")
    {
        Description = "With --docker: restart the tunnel_client container at this run time (e.g. 30s), to measure a client reconnect under load.",
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (Duration.TryParse(text, out var value) && value > TimeSpan.Zero)
            {
                return value;
            }

            result.AddError($"'{text}' is not a positive duration (e.g. 30s, 2m).");
            return null;
        },
    };

    private readonly Option<bool> _stop = new("--docker-stop")
    {
        Description = "With --docker: stop the project's containers when the run ends (docker-compose down removes them).",
    };

    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Add(_docker);
        command.Add(_project);
        command.Add(_endpoint);
        command.Add(_restartClientAt);
        command.Add(_stop);
        command.Validators.Add(result =>
        {
            if (!result.GetValue(_docker) && (result.GetValue(_restartClientAt) is not null || result.GetValue(_stop)))
            {
                result.AddError("--restart-client-at and --docker-stop need --docker.");
            }

            if (result.GetValue(_endpoint) is { } endpoint && !Uri.TryCreate(endpoint, UriKind.Absolute, out _))
            {
                result.AddError($"--docker-host '{endpoint}' is not a URI (unix:///var/run/docker.sock, tcp://host:2375).");
            }
        });
    }

    public DockerRunSettings? Read(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (!parse.GetValue(_docker))
        {
            return null;
        }

        var endpoint = parse.GetValue(_endpoint) is { } text ? new Uri(text) : DockerRunSettings.DefaultEndpoint();
        return new DockerRunSettings(parse.GetValue(_project)!, endpoint, parse.GetValue(_restartClientAt), parse.GetValue(_stop), TimeSpan.FromMinutes(2));
    }
}
