using Microsoft.Extensions.Options;

namespace Tunnel2.Server;

/// <summary>Start-up checks of <see cref="TunnelServerOptions"/>, each failure naming the setting and the fix.</summary>
internal sealed class TunnelServerOptionsValidator : IValidateOptions<TunnelServerOptions>
{
    public ValidateOptionsResult Validate(string? name, TunnelServerOptions options)
    {
        var failures = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Tokens.Count; i++)
        {
            var token = options.Tokens[i];
            var where = $"Tunnel:Tokens:{i}";
            if (string.IsNullOrWhiteSpace(token.Name))
            {
                failures.Add($"{where}:Name is empty; give each token a name for logs.");
            }
            else if (!names.Add(token.Name))
            {
                failures.Add($"{where}:Name '{token.Name}' is used twice.");
            }

            if (token.Sha256.Length != 64 || !token.Sha256.All(Uri.IsHexDigit))
            {
                failures.Add($"{where}:Sha256 must be 64 hex digits (SHA-256 of the token; `printf %s \"$TOKEN\" | sha256sum`).");
            }

            foreach (var session in token.Sessions)
            {
                if (!Guid.TryParseExact(session, "D", out _))
                {
                    failures.Add($"{where}:Sessions has '{session}', which is not a GUID such as 22222222-2222-2222-2222-222222222222.");
                }
            }
        }

        if (!options.UplinkPath.StartsWith('/') || options.UplinkPath.StartsWith("/session/", StringComparison.Ordinal))
        {
            failures.Add("Tunnel:UplinkPath must start with '/' and must not be under /session/.");
        }

        if (options.ResponseHeadersTimeout <= TimeSpan.Zero)
        {
            failures.Add("Tunnel:ResponseHeadersTimeout must be positive.");
        }

        if (options.UplinkWaitTimeout < TimeSpan.Zero)
        {
            failures.Add("Tunnel:UplinkWaitTimeout must not be negative (0 answers 503 at once).");
        }

        if (options.UplinkHandshakeTimeout <= TimeSpan.Zero)
        {
            failures.Add("Tunnel:UplinkHandshakeTimeout must be positive.");
        }

        if (options.RetryAfterSeconds < 0)
        {
            failures.Add("Tunnel:RetryAfterSeconds must not be negative.");
        }

        if (options.RateLimit.SessionRequestsPerSecond < 0 || options.RateLimit.SessionBurst < 0 || options.RateLimit.NotFoundPerMinutePerAddress < 0)
        {
            failures.Add("Tunnel:RateLimit values must not be negative (0 turns a limit off).");
        }

        var tcp = options.Tcp;
        if (tcp.PortRangeStart != 0
            && (tcp.PortRangeStart is < 1 or > 65535 || tcp.PortRangeEnd < tcp.PortRangeStart || tcp.PortRangeEnd > 65535))
        {
            failures.Add("Tunnel:Tcp:PortRangeStart..PortRangeEnd must be a range of ports within 1-65535 (PortRangeStart 0 lets the system pick free ports).");
        }

        if (!System.Net.IPAddress.TryParse(tcp.BindAddress, out _))
        {
            failures.Add($"Tunnel:Tcp:BindAddress '{tcp.BindAddress}' is not an IP address.");
        }

        if (options.MaxRequestBodySize is < 0)
        {
            failures.Add("Tunnel:MaxRequestBodySize must not be negative (leave it empty for no limit).");
        }

        if (!string.IsNullOrEmpty(options.PublicBaseUrl)
            && (!Uri.TryCreate(options.PublicBaseUrl, UriKind.Absolute, out var publicBase) || publicBase.Scheme is not ("http" or "https")))
        {
            failures.Add("Tunnel:PublicBaseUrl must be an absolute http or https URL.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
