using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FaultProxy.Tests;

/// <summary>The proxy against a real loopback target: forwarding, then each toxic and each break mode.</summary>
public sealed class FaultProxyTests(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>Bounded window for "nothing arrives" checks; long against loopback's sub-millisecond delivery.</summary>
    private static readonly TimeSpan s_quietWindow = TimeSpan.FromMilliseconds(300);

    private readonly LoopbackServer _server = new();
    private FaultProxy _proxy = null!;

    public async Task InitializeAsync()
        => _proxy = await FaultProxy.StartAsync(_server.EndPoint, new FaultProxyOptions { Logger = new XunitLogger(output, "proxy"), Seed = 1 });

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync().AsTask().DefaultTimeout();
        _server.Dispose();
    }

    [Fact]
    public async Task Forwards_BothWays_ByteForByte()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            var up = RandomNumberGenerator.GetBytes(300_000);
            var down = RandomNumberGenerator.GetBytes(200_000);

            var sendUp = client.SendAllAsync(up);
            var sendDown = server.SendAllAsync(down);
            var receivedUp = await server.ReceiveExactlyAsync(up.Length);
            var receivedDown = await client.ReceiveExactlyAsync(down.Length);
            await Task.WhenAll(sendUp, sendDown).DefaultTimeout();

            Assert.Equal(up, receivedUp);
            Assert.Equal(down, receivedDown);
            var connection = Assert.Single(_proxy.Connections);
            Assert.Equal(up.Length, connection.BytesUpstream);
            Assert.Equal(down.Length, connection.BytesDownstream);
            Assert.Equal(1, _proxy.AcceptedCount);
        }
    }

    [Fact]
    public async Task HalfClose_IsPassedOn_AndTheOtherDirectionKeepsFlowing()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        var connection = Assert.Single(_proxy.Connections);
        using (client)
        using (server)
        {
            client.Shutdown(SocketShutdown.Send);

            var (receivedByServer, serverError) = await server.ReceiveToEndAsync();
            await server.SendAllAsync("bye"u8.ToArray());
            server.Shutdown(SocketShutdown.Send);
            var reply = await client.ReceiveExactlyAsync(3);
            var (extra, clientError) = await client.ReceiveToEndAsync();

            Assert.Equal(0, receivedByServer);
            Assert.Null(serverError);
            Assert.Equal("bye"u8.ToArray(), reply);
            Assert.Equal(0, extra);
            Assert.Null(clientError);
            await connection.Completion.DefaultTimeout();
            Assert.Null(connection.BrokenBy);
            Assert.Equal(0, _proxy.ActiveCount);
        }
    }

    [Fact]
    public async Task Latency_DelaysOnlyItsDirection_AndAppliesToBytesAfterAChange()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            // Before: no toxic.
            await client.SendAllAsync([1]);
            await server.ReceiveExactlyAsync(1);

            _proxy.Upstream.Latency = TimeSpan.FromMilliseconds(250);
            var clock = Stopwatch.StartNew();
            await client.SendAllAsync([2]);
            var delayed = await server.ReceiveExactlyAsync(1);
            var upstreamElapsed = clock.Elapsed;

            Assert.Equal([2], delayed);
            Assert.True(upstreamElapsed >= TimeSpan.FromMilliseconds(240), $"Upstream byte arrived after {upstreamElapsed.TotalMilliseconds} ms, before the 250 ms latency.");
            Assert.Equal(TimeSpan.Zero, _proxy.Downstream.Latency);
        }
    }

    [Fact]
    public void Jitter_DrawsUniformlyAroundTheLatency_NeverBelowZero()
    {
        var state = new ToxicState { Latency = TimeSpan.FromMilliseconds(100), Jitter = TimeSpan.FromMilliseconds(40) };
        var below = 0;
        var above = 0;
        for (var i = 0; i < 1_000; i++)
        {
            var delay = _proxy.NextDelay(state);
            Assert.InRange(delay, TimeSpan.FromMilliseconds(60), TimeSpan.FromMilliseconds(140));
            below += delay < state.Latency ? 1 : 0;
            above += delay > state.Latency ? 1 : 0;
        }

        Assert.InRange(below, 400, 600);
        Assert.InRange(above, 400, 600);
        for (var i = 0; i < 100; i++)
        {
            Assert.True(_proxy.NextDelay(new ToxicState { Latency = TimeSpan.FromMilliseconds(1), Jitter = TimeSpan.FromSeconds(10) }) >= TimeSpan.Zero);
        }
    }

    [Fact]
    public async Task Bandwidth_CapsTheRate()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            _proxy.Downstream.BandwidthBytesPerSecond = 100_000;
            var data = RandomNumberGenerator.GetBytes(50_000);

            var clock = Stopwatch.StartNew();
            await server.SendAllAsync(data);
            var received = await client.ReceiveExactlyAsync(data.Length);

            // 50 kB at 100 kB/s: at least 0.5 s, less the first 50 ms burst the cap allows.
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(440), $"50 kB arrived in {clock.Elapsed.TotalMilliseconds} ms at a 100 kB/s cap.");
            Assert.Equal(data, received);
        }
    }

    [Fact]
    public async Task Stall_HoldsBytesForTheDuration_ThenDeliversThemAll()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            var clock = Stopwatch.StartNew();
            _proxy.Upstream.Stall(TimeSpan.FromMilliseconds(300));
            var data = RandomNumberGenerator.GetBytes(10_000);
            await client.SendAllAsync(data);

            var received = await server.ReceiveExactlyAsync(data.Length);

            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(290), $"Stalled bytes arrived after {clock.Elapsed.TotalMilliseconds} ms.");
            Assert.Equal(data, received);
        }
    }

    [Fact]
    public async Task HalfOpenToxic_HoldsBytesAndFin_UntilCleared()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            _proxy.Upstream.HalfOpen = true;
            await client.SendAllAsync([42]);
            client.Shutdown(SocketShutdown.Send);
            var buffer = new byte[8];
            var pending = server.ReceiveAsync(buffer, SocketFlags.None);

            await pending.AssertStillPendingAsync(s_quietWindow, "a read on the target");
            _proxy.Upstream.HalfOpen = false;

            Assert.Equal(1, await pending.DefaultTimeout());
            Assert.Equal(42, buffer[0]);
            Assert.Equal(0, await server.ReceiveAsync(buffer, SocketFlags.None).DefaultTimeout());
        }
    }

    [Fact]
    public async Task BreakAllHalfOpen_NothingMoves_NoFinNoReset_NewConnectionsWork()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            Assert.Equal(1, _proxy.BreakAll(BreakMode.HalfOpen));

            await client.SendAllAsync([1, 2, 3]);
            await server.SendAllAsync([4, 5, 6]);
            server.Shutdown(SocketShutdown.Send);
            var atServer = server.ReceiveAsync(new byte[8], SocketFlags.None);
            var atClient = client.ReceiveAsync(new byte[8], SocketFlags.None);

            // Neither data, nor the target's FIN, nor an error reaches either end: the link looks alive but is dead.
            await Task.WhenAll(
                atServer.AssertStillPendingAsync(s_quietWindow, "a read on the target"),
                atClient.AssertStillPendingAsync(s_quietWindow, "a read on the client"));
            Assert.Equal(BreakMode.HalfOpen, Assert.Single(_proxy.Connections).BrokenBy);

            var (fresh, freshServer) = await _proxy.ConnectPairAsync(_server);
            using (fresh)
            using (freshServer)
            {
                await fresh.SendAllAsync([7]);
                Assert.Equal([7], await freshServer.ReceiveExactlyAsync(1));
            }
        }
    }

    [Fact]
    public async Task BreakAllReset_BothEndsSeeConnectionReset()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            Assert.Equal(1, _proxy.BreakAll(BreakMode.Reset));

            var (_, clientError) = await client.ReceiveToEndAsync();
            var (_, serverError) = await server.ReceiveToEndAsync();

            Assert.Equal(SocketError.ConnectionReset, clientError?.SocketErrorCode);
            Assert.Equal(SocketError.ConnectionReset, serverError?.SocketErrorCode);
        }
    }

    [Fact]
    public async Task BreakAllClose_BothEndsSeeEndOfStream()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            Assert.Equal(1, _proxy.BreakAll(BreakMode.Close));

            var (clientBytes, clientError) = await client.ReceiveToEndAsync();
            var (serverBytes, serverError) = await server.ReceiveToEndAsync();

            Assert.Equal((0, (SocketException?)null), (clientBytes, clientError));
            Assert.Equal((0, (SocketException?)null), (serverBytes, serverError));
        }
    }

    [Fact]
    public async Task ResetAfterBytes_ForwardsExactlyThatMany_ThenResetsBothEnds()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            _proxy.Downstream.ResetAfterBytes = 1_000;

            await server.SendAllAsync(RandomNumberGenerator.GetBytes(4_000));
            var (received, clientError) = await client.ReceiveToEndAsync();
            var (_, serverError) = await server.ReceiveToEndAsync();

            // Linux delivers what was queued before the RST, then the reset.
            Assert.Equal(1_000, received);
            Assert.Equal(SocketError.ConnectionReset, clientError?.SocketErrorCode);
            Assert.Equal(SocketError.ConnectionReset, serverError?.SocketErrorCode);
        }
    }

    [Fact]
    public async Task ResetAfterBytes_CountsFromWhenItWasSet()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        var connection = Assert.Single(_proxy.Connections);
        using (client)
        using (server)
        {
            await client.SendAllAsync(new byte[5_000]);
            await server.ReceiveExactlyAsync(5_000);

            _proxy.Upstream.ResetAfterBytes = 100;
            await client.SendAllAsync(new byte[60]);
            await server.ReceiveExactlyAsync(60);
            await client.SendAllAsync(new byte[60]);
            var (received, serverError) = await server.ReceiveToEndAsync();

            Assert.Equal(40, received);
            Assert.Equal(SocketError.ConnectionReset, serverError?.SocketErrorCode);
            await connection.Completion.DefaultTimeout();
            Assert.Equal(5_100, connection.BytesUpstream);
            Assert.Equal(BreakMode.Reset, connection.BrokenBy);
        }
    }

    [Fact]
    public async Task LimitData_ForwardsExactlyThatMany_ThenClosesBothEndsGracefully()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            _proxy.Downstream.LimitDataBytes = 1_000;

            await server.SendAllAsync(RandomNumberGenerator.GetBytes(4_000));
            var (received, clientError) = await client.ReceiveToEndAsync();
            var (serverReceived, serverError) = await server.ReceiveToEndAsync();

            Assert.Equal(1_000, received);
            Assert.Null(clientError);
            Assert.Equal(0, serverReceived);
            Assert.Null(serverError);
        }
    }

    [Fact]
    public async Task Slicer_SendsInSegments_BytesIntact()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            _proxy.Upstream.SliceSize = 100;
            _proxy.Upstream.SliceDelay = TimeSpan.FromMilliseconds(1);
            var data = RandomNumberGenerator.GetBytes(1_000);

            await client.SendAllAsync(data);
            var received = await server.ReceiveExactlyAsync(data.Length);

            Assert.Equal(data, received);
            var connection = Assert.Single(_proxy.Connections);
            Assert.Equal(data.Length, connection.BytesUpstream);
            Assert.True(connection.SegmentsUpstream >= 10, $"{connection.SegmentsUpstream} segments for 1,000 bytes sliced by 100.");
        }
    }

    [Fact]
    public async Task RefuseNewConnections_ResetsNewOnes_LiveOnesCarryOn()
    {
        var (client, server) = await _proxy.ConnectPairAsync(_server);
        using (client)
        using (server)
        {
            _proxy.RefuseNewConnections = true;
            var refusedError = await ConnectAndReadAsync(_proxy);

            await client.SendAllAsync([9]);
            Assert.Equal([9], await server.ReceiveExactlyAsync(1));
            Assert.Equal(SocketError.ConnectionReset, refusedError?.SocketErrorCode);
            Assert.Equal(1, _proxy.AcceptedCount);

            _proxy.ClearToxics();
            var (again, againServer) = await _proxy.ConnectPairAsync(_server);
            again.Dispose();
            againServer.Dispose();
            Assert.Equal(2, _proxy.AcceptedCount);
        }
    }

    [Fact]
    public async Task TargetDown_ClientConnectionIsReset()
    {
        int closedPort;
        using (var probe = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closedPort = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        await using var proxy = await FaultProxy.StartAsync(new IPEndPoint(IPAddress.Loopback, closedPort));

        var error = await ConnectAndReadAsync(proxy);

        Assert.Equal(SocketError.ConnectionReset, error?.SocketErrorCode);
        Assert.Equal(0, proxy.AcceptedCount);
    }

    [Fact]
    public async Task WhenAcceptedAsync_CompletesOnTheNthConnection()
    {
        var second = _proxy.WhenAcceptedAsync(2);
        var (a, aServer) = await _proxy.ConnectPairAsync(_server);
        var firstOnly = second.IsCompleted;
        var (b, bServer) = await _proxy.ConnectPairAsync(_server);
        await second.DefaultTimeout();

        Assert.False(firstOnly);
        Assert.Equal([1L, 2L], _proxy.Connections.Select(c => c.Id));
        foreach (var socket in new[] { a, aServer, b, bServer })
        {
            socket.Dispose();
        }
    }

    [Fact]
    public async Task Dispose_ReleasesLiveAndFrozenConnections()
    {
        var proxy = await FaultProxy.StartAsync(_server.EndPoint);
        var (live, liveServer) = await proxy.ConnectPairAsync(_server);
        var (frozen, frozenServer) = await proxy.ConnectPairAsync(_server);
        proxy.Connections[1].Break(BreakMode.HalfOpen);

        await proxy.DisposeAsync().AsTask().DefaultTimeout();

        Assert.Equal(0, proxy.ActiveCount);
        foreach (var socket in new[] { live, liveServer, frozen, frozenServer })
        {
            using (socket)
            {
                var (_, _) = await socket.ReceiveToEndAsync();
            }
        }
    }

    /// <summary>
    /// Connects and reads to the end. A reset can beat the connect's completion on loopback, so it is reported from
    /// whichever step saw it; data (or a clean end) yields null.
    /// </summary>
    private static async Task<SocketException?> ConnectAndReadAsync(FaultProxy proxy)
    {
        try
        {
            using var socket = await proxy.ConnectAsync();
            var (received, error) = await socket.ReceiveToEndAsync();
            return received == 0 ? error : null;
        }
        catch (SocketException ex)
        {
            return ex;
        }
    }
}
