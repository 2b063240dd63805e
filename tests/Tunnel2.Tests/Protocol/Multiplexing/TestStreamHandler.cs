using System.Threading.Channels;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>Collects the streams the peer opens, for the test to accept in order.</summary>
internal sealed class TestStreamHandler : ITunnelStreamHandler
{
    private readonly Channel<TunnelStream> _opened = Channel.CreateUnbounded<TunnelStream>();
    private int _openedCount;

    public int OpenedCount => Volatile.Read(ref _openedCount);

    public void OnStreamOpened(TunnelStream stream)
    {
        Interlocked.Increment(ref _openedCount);
        _opened.Writer.TryWrite(stream);
    }

    public Task<TunnelStream> AcceptAsync() => _opened.Reader.ReadAsync().AsTask().DefaultTimeout();
}
