namespace Tunnel2.Protocol.Multiplexing;

/// <summary>Which end of the uplink this is; it fixes the parity of the stream ids each side opens.</summary>
public enum TunnelRole
{
    /// <summary>The TunnelServer: opens even stream ids (one per public request).</summary>
    Server,

    /// <summary>The TunnelClient: opens odd stream ids (reserved for client-initiated streams).</summary>
    Client,
}
