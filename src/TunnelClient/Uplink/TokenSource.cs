using Microsoft.Extensions.Options;

namespace Tunnel2.Client.Uplink;

/// <summary>Supplies the uplink token from configuration or a file, re-reading the file on each dial so a rotated token is picked up.</summary>
internal sealed class TokenSource(IOptions<TunnelClientOptions> options)
{
    private readonly TunnelClientOptions _options = options.Value;

    public string GetToken()
    {
        if (!string.IsNullOrWhiteSpace(_options.Token))
        {
            return _options.Token.Trim();
        }

        var path = _options.TokenFile!;
        using var reader = new StreamReader(path);
        var line = reader.ReadLine()?.Trim();
        return string.IsNullOrEmpty(line)
            ? throw new InvalidOperationException($"The token file '{path}' is empty.")
            : line;
    }
}
