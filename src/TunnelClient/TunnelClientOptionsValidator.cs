using Microsoft.Extensions.Options;

namespace Tunnel2.Client;

/// <summary>Start-up checks of <see cref="TunnelClientOptions"/>; each failure names the setting and how to fix it.</summary>
internal sealed class TunnelClientOptionsValidator : IValidateOptions<TunnelClientOptions>
{
    public ValidateOptionsResult Validate(string? name, TunnelClientOptions options)
    {
        var failures = new List<string>();
        if (options.Servers.Count == 0)
        {
            CheckUrl(failures, "--server (Tunnel:Server)", options.Server);
        }

        for (var i = 0; i < options.Servers.Count; i++)
        {
            CheckUrl(failures, $"--server (Tunnel:Servers:{i})", options.Servers[i]);
        }

        if (options.Servers.Distinct(StringComparer.OrdinalIgnoreCase).Count() != options.Servers.Count)
        {
            failures.Add("--server (Tunnel:Servers) lists a server twice.");
        }
        CheckUrl(failures, "--backend (Tunnel:Backend)", options.Backend);
        foreach (var (prefix, url) in options.Routes)
        {
            if (!prefix.StartsWith('/'))
            {
                failures.Add($"Route prefix '{prefix}' must start with '/'.");
            }

            CheckUrl(failures, $"route '{prefix}'", url);
        }

        foreach (var (service, endpoint) in options.TcpServices)
        {
            if (!Tunnel2.Protocol.HeaderBlocks.HeaderValidation.IsToken(service))
            {
                failures.Add($"TCP service name '{service}' must be a token (letters, digits, '-', '_', '.').");
            }

            if (!TryParseEndpoint(endpoint, out _, out _))
            {
                failures.Add($"TCP service '{service}' must point at host:port; it is '{endpoint}'.");
            }
        }

        if (string.IsNullOrWhiteSpace(options.Token) && string.IsNullOrWhiteSpace(options.TokenFile))
        {
            failures.Add("No uplink token: set TUNNEL2_TOKEN, Tunnel:Token in configuration, or --token-file <path>.");
        }

        if (!string.IsNullOrWhiteSpace(options.Session) && !Guid.TryParseExact(options.Session, "D", out _))
        {
            failures.Add($"--session (Tunnel:Session) '{options.Session}' is not a GUID such as 22222222-2222-2222-2222-222222222222.");
        }

        if (!string.IsNullOrWhiteSpace(options.ServerCertificateSha256))
        {
            var hex = options.ServerCertificateSha256.Replace(":", string.Empty, StringComparison.Ordinal);
            if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
            {
                failures.Add("Tunnel:ServerCertificateSha256 must be 64 hex digits (openssl x509 -noout -fingerprint -sha256 -in server.crt).");
            }
        }

        if (options.Uplinks is < 1 or > 16)
        {
            failures.Add($"--uplinks (Tunnel:Uplinks) must be between 1 and 16; it is {options.Uplinks}.");
        }

        if (options.MaxConcurrentRequests < 1)
        {
            failures.Add("--max-concurrent-requests (Tunnel:MaxConcurrentRequests) must be at least 1.");
        }

        if (options.MaxQueuedRequests < 0)
        {
            failures.Add("Tunnel:MaxQueuedRequests must not be negative.");
        }

        if (!Enum.IsDefined(options.BackendHttpClient))
        {
            failures.Add($"Tunnel:BackendHttpClient must be Builtin or HttpClient; it is '{options.BackendHttpClient}'.");
        }

        foreach (var (setting, value) in new[]
        {
            ("Tunnel:BackendTimeout", options.BackendTimeout),
            ("Tunnel:BackendConnectTimeout", options.BackendConnectTimeout),
            ("Tunnel:ServerConnectTimeout", options.ServerConnectTimeout),
            ("Tunnel:ReconnectBaseDelay", options.ReconnectBaseDelay),
            ("Tunnel:ReconnectMaxDelay", options.ReconnectMaxDelay),
            ("Tunnel:FailbackDelay", options.FailbackDelay),
        })
        {
            if (value <= TimeSpan.Zero)
            {
                failures.Add($"{setting} must be positive.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Parses <c>host:port</c> (or <c>[v6]:port</c>).</summary>
    internal static bool TryParseEndpoint(string value, out string host, out int port)
    {
        host = string.Empty;
        port = 0;
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port)
            || port is < 1 or > 65535)
        {
            return false;
        }

        host = value[..colon].Trim('[', ']');
        return host.Length > 0;
    }

    private static void CheckUrl(List<string> failures, string setting, string value)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            failures.Add($"{setting} must be an absolute http:// or https:// URL; it is '{value}'.");
        }
        else if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            failures.Add($"{setting} must not have a query or fragment; it is '{value}'.");
        }
    }
}
