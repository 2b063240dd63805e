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

        if (!options.UplinkPath.All(static c => char.IsAsciiLetterOrDigit(c) || c is '/' or '-' or '.' or '_' or '~'))
        {
            failures.Add("Tunnel:UplinkPath must be a literal path of ASCII letters, digits and / - . _ ~ (the pre-authentication budget recognises uplinks by it).");
        }

        ValidateUplinkListener(options, failures);

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

        if (options.TransportBlockSize is < TunnelServerOptions.KestrelTransportBlockSize or > TunnelServerOptions.MaxTransportBlockSize)
        {
            failures.Add($"Tunnel:TransportBlockSize must be between {TunnelServerOptions.KestrelTransportBlockSize} (Kestrel's own pool) and {TunnelServerOptions.MaxTransportBlockSize} bytes; got {options.TransportBlockSize}.");
        }

        if (options.TransportLargeBlockSize < options.TransportBlockSize || options.TransportLargeBlockSize > TunnelServerOptions.MaxTransportBlockSize)
        {
            failures.Add($"Tunnel:TransportLargeBlockSize must be between Tunnel:TransportBlockSize ({options.TransportBlockSize}) and {TunnelServerOptions.MaxTransportBlockSize} bytes; got {options.TransportLargeBlockSize}.");
        }

        if (options.TransportLargeBlockMemory is < 0 or > TunnelServerOptions.MaxTransportLargeBlockMemory)
        {
            failures.Add($"Tunnel:TransportLargeBlockMemory must be between 0 (no large blocks) and {TunnelServerOptions.MaxTransportLargeBlockMemory} bytes; got {options.TransportLargeBlockMemory}.");
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

        if (options.DrainTimeout < TimeSpan.Zero)
        {
            failures.Add("Tunnel:DrainTimeout must not be negative (0 stops without waiting for in-flight requests).");
        }

        ValidateDirectory(options.Directory, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateUplinkListener(TunnelServerOptions options, List<string> failures)
    {
        var preAuth = options.UplinkPreAuth;
        if (preAuth.MaxBytes is < 1024 or > 1024 * 1024)
        {
            failures.Add("Tunnel:UplinkPreAuth:MaxBytes must be between 1024 (a TunnelClient's upgrade request must fit) and 1048576.");
        }

        if (preAuth.Timeout <= TimeSpan.Zero)
        {
            failures.Add("Tunnel:UplinkPreAuth:Timeout must be positive.");
        }

        if (string.IsNullOrEmpty(options.UplinkListenUrl))
        {
            return;
        }

        if (!IsListenUrl(options.UplinkListenUrl))
        {
            failures.Add($"Tunnel:UplinkListenUrl must be an http or https URL without a path, e.g. http://0.0.0.0:12002; it is '{options.UplinkListenUrl}'.");
        }

        if (string.IsNullOrEmpty(options.PublicBaseUrl))
        {
            failures.Add("Tunnel:PublicBaseUrl must be set when Tunnel:UplinkListenUrl is: the uplink listener's address is not where the public reaches sessions.");
        }
    }

    /// <summary>An address Kestrel can listen on, as in <c>--urls</c> (so <c>http://*:12002</c> too), without a path.</summary>
    private static bool IsListenUrl(string url)
    {
        try
        {
            var address = Microsoft.AspNetCore.Http.BindingAddress.Parse(url);
            return address.Scheme is "http" or "https" && string.IsNullOrEmpty(address.PathBase);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static void ValidateDirectory(TunnelDirectoryOptions directory, List<string> failures)
    {
        if (!directory.Enabled)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(directory.NodeSecret) || directory.NodeSecret.Length < 32)
        {
            failures.Add("Tunnel:Directory:NodeSecret must be set (at least 32 characters, the same on every node: `openssl rand -hex 32`) when Tunnel:Directory:Redis is.");
        }

        if (!string.IsNullOrEmpty(directory.NodeUrl)
            && (!Uri.TryCreate(directory.NodeUrl, UriKind.Absolute, out var node) || node.Scheme is not ("http" or "https")
                || node.AbsolutePath != "/" || !string.IsNullOrEmpty(node.Query)))
        {
            failures.Add($"Tunnel:Directory:NodeUrl must be an absolute http or https URL without a path, e.g. http://10.0.0.5:12000; it is '{directory.NodeUrl}'.");
        }

        if (directory.LeaseDuration <= TimeSpan.Zero || directory.RenewInterval <= TimeSpan.Zero || directory.RenewInterval * 2 > directory.LeaseDuration)
        {
            failures.Add("Tunnel:Directory:RenewInterval must be positive and at most half of LeaseDuration (defaults 5 s and 15 s), so one failed renewal does not drop a live node.");
        }

        foreach (var (setting, value) in new[]
        {
            ("OperationTimeout", directory.OperationTimeout),
            ("ForwardConnectTimeout", directory.ForwardConnectTimeout),
        })
        {
            if (value <= TimeSpan.Zero)
            {
                failures.Add($"Tunnel:Directory:{setting} must be positive.");
            }
        }

        if (directory.LookupCacheDuration < TimeSpan.Zero || directory.UnreachableNodeBackoff < TimeSpan.Zero)
        {
            failures.Add("Tunnel:Directory:LookupCacheDuration and UnreachableNodeBackoff must not be negative.");
        }
    }
}
