using Microsoft.AspNetCore.HostFiltering;
using Microsoft.Extensions.Options;

namespace Tunnel2.Server;

/// <summary>
/// Start-up checks of ASP.NET Core's <c>AllowedHosts</c>, the server's Host allow-list
/// (docs/adr/0009-host-filtering-and-trace.md). ASP.NET Core accepts any string there; the mistakes below would
/// otherwise either refuse every request (a URL, a port) or silently allow every host (an array, a stray <c>*</c>).
/// </summary>
internal sealed class AllowedHostsValidator(IConfiguration configuration) : IValidateOptions<HostFilteringOptions>
{
    private const string Key = "AllowedHosts";

    public ValidateOptionsResult Validate(string? name, HostFilteringOptions options)
    {
        var failures = new List<string>();
        if (configuration.GetSection(Key).GetChildren().Any())
        {
            failures.Add($"{Key} is one string with ';' between the names, e.g. \"tunnel.example.com;127.0.0.1\"; ASP.NET Core ignores an array and allows every host.");
        }

        var entries = options.AllowedHosts;
        foreach (var entry in entries)
        {
            var problem = Check(entry, entries.Count);
            if (problem is not null)
            {
                failures.Add($"{Key} has '{entry}': {problem}");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static string? Check(string entry, int count)
    {
        if (entry is "*" or "0.0.0.0" or "[::]")
        {
            // ASP.NET Core turns filtering off for any of them, whatever else is listed.
            return count == 1 && entry == "*"
                ? null
                : "it allows every host. Use \"*\" alone for any host, or list only host names.";
        }

        if (entry.Contains('/', StringComparison.Ordinal) || entry.Contains('@', StringComparison.Ordinal))
        {
            return "list a host name only, without scheme, user or path (e.g. tunnel.example.com).";
        }

        if (entry.Any(char.IsWhiteSpace))
        {
            return "no spaces: ';' separates the names with nothing around it (ASP.NET Core does not trim them).";
        }

        if (entry.StartsWith('*') && !entry.StartsWith("*.", StringComparison.Ordinal))
        {
            return "a wildcard is \"*.\" followed by a domain (*.tunnel.example.com), which allows its subdomains.";
        }

        if (!entry.StartsWith('[') && System.Net.IPAddress.TryParse(entry, out var address)
            && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            return $"an IPv6 address goes in brackets, [{entry}], as it appears in the Host header.";
        }

        if (new HostString(entry).Port is not null)
        {
            return "ports are not compared (Host tunnel.example.com:8443 matches tunnel.example.com), so list the name without one.";
        }

        return null;
    }
}
