using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tunnel2.Protocol.Multiplexing;

/// <summary>What a <see cref="TunnelConnection"/> needs besides its transport.</summary>
public sealed class TunnelConnectionOptions
{
    public required TunnelRole Role { get; init; }

    public TunnelLimits Limits { get; init; } = new();

    /// <summary>Receives the streams the peer opens; null refuses them all.</summary>
    public ITunnelStreamHandler? StreamHandler { get; init; }

    public ILogger Logger { get; init; } = NullLogger.Instance;

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>A name for logs. Must not contain secrets or session ids.</summary>
    public string Name { get; init; } = "uplink";
}
