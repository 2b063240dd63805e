using Tunnel2.Protocol;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>A TunnelServer-side and a TunnelClient-side connection joined by an in-memory duplex pipe.</summary>
internal sealed class TunnelConnectionPair : IAsyncDisposable
{
    private TunnelConnectionPair(TunnelConnection server, TunnelConnection client, TestStreamHandler serverStreams, TestStreamHandler clientStreams)
    {
        Server = server;
        Client = client;
        ServerStreams = serverStreams;
        ClientStreams = clientStreams;
        ServerRun = server.RunAsync();
        ClientRun = client.RunAsync();
    }

    public TunnelConnection Server { get; }

    public TunnelConnection Client { get; }

    /// <summary>Streams the client opened, as the server sees them.</summary>
    public TestStreamHandler ServerStreams { get; }

    /// <summary>Streams the server opened, as the client sees them.</summary>
    public TestStreamHandler ClientStreams { get; }

    public Task ServerRun { get; }

    public Task ClientRun { get; }

    public static async Task<TunnelConnectionPair> StartAsync(ITestOutputHelper output, Action<TunnelLimits>? server = null, Action<TunnelLimits>? client = null)
    {
        var pipes = DuplexPipe.CreateConnectionPair();
        var serverStreams = new TestStreamHandler();
        var clientStreams = new TestStreamHandler();
        var pair = new TunnelConnectionPair(
            new TunnelConnection(pipes.Transport, CreateOptions(output, TunnelRole.Server, server, serverStreams)),
            new TunnelConnection(pipes.Application, CreateOptions(output, TunnelRole.Client, client, clientStreams)),
            serverStreams,
            clientStreams);
        await pair.Server.Ready.DefaultTimeout();
        await pair.Client.Ready.DefaultTimeout();
        return pair;
    }

    /// <summary>Server opens a stream and sends <paramref name="head"/>; returns both ends.</summary>
    public async Task<(TunnelStream Server, TunnelStream Client)> OpenFromServerAsync(byte[]? head = null, bool endStream = false)
    {
        Assert.True(Server.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(head ?? TunnelStreamTestExtensions.RequestHead(), endStream));
        var accepted = await ClientStreams.AcceptAsync();
        Assert.Equal(stream.StreamId, accepted.StreamId);
        return (stream, accepted);
    }

    /// <summary>
    /// Proves the client's read loop has handled everything the server sent before this call: the client accepts a
    /// new stream only after processing every earlier frame. Returns the client's count of streams other than the
    /// barrier, and resets the barrier.
    /// </summary>
    public async Task<int> ClientStreamsAfterBarrierAsync()
    {
        var (server, client) = await OpenFromServerAsync();
        var others = Client.ActiveStreamCount - 1;
        client.Reset(TunnelErrorCode.Cancel);
        await Assert.ThrowsAsync<TunnelStreamException>(() => server.ReadHeadersAsync().AsTask().DefaultTimeout());
        return others;
    }

    /// <summary>As <see cref="ClientStreamsAfterBarrierAsync"/>, for the server's read loop.</summary>
    public async Task<int> ServerStreamsAfterBarrierAsync()
    {
        Assert.True(Client.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        var accepted = await ServerStreams.AcceptAsync();
        var others = Server.ActiveStreamCount - 1;
        accepted.Reset(TunnelErrorCode.Cancel);
        await Assert.ThrowsAsync<TunnelStreamException>(() => stream.ReadHeadersAsync().AsTask().DefaultTimeout());
        return others;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync().AsTask().DefaultTimeout();
        await Client.DisposeAsync().AsTask().DefaultTimeout();
        await ServerRun.DefaultTimeout();
        await ClientRun.DefaultTimeout();
    }

    private static TunnelConnectionOptions CreateOptions(ITestOutputHelper output, TunnelRole role, Action<TunnelLimits>? configure, TestStreamHandler streams)
    {
        var limits = new TunnelLimits();
        configure?.Invoke(limits);
        return new TunnelConnectionOptions
        {
            Role = role,
            Limits = limits,
            StreamHandler = streams,
            Logger = new XunitLogger(output, role.ToString()),
            Name = role.ToString(),
        };
    }
}
