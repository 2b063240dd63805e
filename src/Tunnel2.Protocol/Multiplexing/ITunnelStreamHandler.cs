namespace Tunnel2.Protocol.Multiplexing;

/// <summary>Receives the streams the peer opens.</summary>
public interface ITunnelStreamHandler
{
    /// <summary>
    /// Called on the connection's read loop when the peer opens <paramref name="stream"/>; its head is already
    /// available from <see cref="TunnelStream.ReadHeadersAsync"/>. Must return quickly: queue the work, never block.
    /// </summary>
    void OnStreamOpened(TunnelStream stream);
}
