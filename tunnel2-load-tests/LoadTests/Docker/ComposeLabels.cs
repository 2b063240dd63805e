namespace Tunnel2.LoadTests.Docker;

/// <summary>
/// The labels docker-compose (v1 and v2) puts on the containers it creates, and how a container is matched to a
/// service of a project. One-off containers (<c>docker-compose run</c>) carry the service label too but are not the
/// service: they are left out.
/// </summary>
internal static class ComposeLabels
{
    public const string Project = "com.docker.compose.project";
    public const string Service = "com.docker.compose.service";
    public const string OneOff = "com.docker.compose.oneoff";
    public const string ContainerNumber = "com.docker.compose.container-number";

    /// <summary>The service a container belongs to in <paramref name="project"/>, or null (other project, one-off, no labels).</summary>
    public static string? ServiceOf(IDictionary<string, string>? labels, string project)
    {
        if (labels is null
            || !labels.TryGetValue(Project, out var owner)
            || !string.Equals(owner, project, StringComparison.Ordinal)
            || !labels.TryGetValue(Service, out var service)
            || string.IsNullOrEmpty(service))
        {
            return null;
        }

        return labels.TryGetValue(OneOff, out var oneOff) && string.Equals(oneOff, "True", StringComparison.OrdinalIgnoreCase) ? null : service;
    }

    /// <summary>The replica number (1 for a service that is not scaled); containers without it count as 1.</summary>
    public static int NumberOf(IDictionary<string, string>? labels) =>
        labels is not null && labels.TryGetValue(ContainerNumber, out var text) && int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 1;

    /// <summary>The Engine API's list filter for every container of a project.</summary>
    public static IDictionary<string, IDictionary<string, bool>> ProjectFilter(string project) =>
        new Dictionary<string, IDictionary<string, bool>>(StringComparer.Ordinal)
        {
            ["label"] = new Dictionary<string, bool>(StringComparer.Ordinal) { [$"{Project}={project}"] = true },
        };

    /// <summary>
    /// Start order of the dev system's services: backends first, then the server, then the client (as the compose
    /// file's depends_on); services it does not know come last, by name. Stop in the reverse order.
    /// </summary>
    public static IReadOnlyList<string> StartOrder(IEnumerable<string> services)
    {
        ArgumentNullException.ThrowIfNull(services);
        string[] known = ["test_backend", "httpbin", "tunnel_server", "tunnel_client"];
        return services
            .Distinct(StringComparer.Ordinal)
            .OrderBy(s => Array.IndexOf(known, s) is var i && i >= 0 ? i : known.Length)
            .ThenBy(s => s, StringComparer.Ordinal)
            .ToList();
    }
}
