using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Protocol;
using Tunnel2.Server.Uplink;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// The pre-authentication budget of the uplink endpoint (reliability.md §2 A14, B7; §4.3 item 3;
/// docs/adr/0008-uplink-pre-auth-budget.md): what a connection to <c>/tunnel/connect</c> can cost before it has
/// presented a valid token. A connection whose first request line targets the uplink path gets
/// <c>Tunnel:UplinkPreAuth</c> (4 KiB, 5 s) on top of the port's Kestrel limits, which public traffic keeps alone; on the
/// dedicated uplink listener every connection gets it from its accept. An upgrade request may carry no body, and a bad
/// credential is answered 401 at once and the connection closed. Each test also proves nothing reached the session: no
/// uplink registered, the live ones untouched.
/// </summary>
public sealed class UplinkPreAuthTests(ITestOutputHelper output)
{
    // Distinct from every other timer the server arms, so that ArmedTimeProvider can tell the budget's apart.
    private static readonly TimeSpan PreAuthTimeout = TimeSpan.FromSeconds(4);

    [Theory]
    [InlineData("GET /tunnel/connect HTTP/1.1\r\n")]
    [InlineData("GET /tunn")]
    public async Task B7_UplinkHeadSlowerThanTheBudget_ClosedAfterThePreAuthTimeout_EndpointNeverRuns(string sent)
    {
        var time = new ArmedTimeProvider(PreAuthTimeout);
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend(),
            serverHost: b => b.Services.AddSingleton<TimeProvider>(time),
            server: o => o.UplinkPreAuth.Timeout = PreAuthTimeout);
        using var watch = new UplinkWatch(tunnel);
        var registered = tunnel.Uplinks.RegisteredCount;

        // The client's own uplinks armed (and disarmed) the budget's timer when they connected.
        var armed = time.Armed;
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // The start of an uplink request line (complete, or still only a prefix of the path), then nothing. The budget
        // arms its timer at the first byte; Kestrel's own RequestHeadersTimeout (30 s, real time) is far away.
        await raw.SendAsync(sent);
        await time.WhenArmedAsync(armed + 1).DefaultTimeout();
        var closed = raw.ReadUntilClosedAsync();
        time.Advance(PreAuthTimeout);
        var answer = await closed.DefaultTimeout();

        Assert.Empty(answer);
        Assert.Equal(1, PreAuth(tunnel).ClosedForTimeout);
        Assert.Equal(0, PreAuth(tunnel).ClosedForBytes);
        Assert.Equal(0, tunnel.Uplinks.RejectedCount);
        Assert.Equal(registered, tunnel.Uplinks.RegisteredCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("stalls")]
    [InlineData("trickles")]
    public async Task B7_UplinkHeadNeverCompletes_408AndClosedAfterRequestHeadersTimeout_EndpointNeverRuns(string how)
    {
        // The budget adds to Kestrel's limits, it does not replace them: with RequestHeadersTimeout (1 s here) below the
        // budget's 5 s, Kestrel's 408 still comes first.
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend(),
            serverHost: b => b.WebHost.ConfigureKestrel(k => k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(1)));
        using var watch = new UplinkWatch(tunnel);
        var registered = tunnel.Uplinks.RegisteredCount;
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        var started = Stopwatch.StartNew();
        await raw.SendAsync($"GET {UplinkHandshake.DefaultPath} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: Upgrade\r\nUpgrade: tunnel2\r\nAuthorization: Bearer ");
        var closed = raw.ReadUntilClosedAsync();

        // "trickles" keeps sending token characters, one per 200 ms, at most 25 (5 s), until the server closes: the
        // timeout is for the whole head, so activity does not extend it. The delay paces the client; the test waits
        // for the server's close.
        for (var i = 0; how == "trickles" && i < 25 && !closed.IsCompleted; i++)
        {
            await Task.WhenAny(closed, raw.SendAsync("a").ContinueWith(static _ => { }, TaskScheduler.Default));
            await Task.WhenAny(closed, Task.Delay(200));
        }

        var answer = Encoding.Latin1.GetString(await closed.DefaultTimeout());
        started.Stop();
        output.WriteLine($"[test] closed after {started.ElapsedMilliseconds} ms: {answer.Split("\r\n")[0]}");

        // Kestrel checks the timeout on its 1 s heartbeat and adds one interval of slack: 2–3 s for a 1 s timeout.
        Assert.StartsWith("HTTP/1.1 408 ", answer, StringComparison.Ordinal);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(6));
        Assert.Equal(0, tunnel.Uplinks.RejectedCount);
        Assert.Equal(registered, tunnel.Uplinks.RegisteredCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("a 6 KiB header")]
    [InlineData("request line over 8 KiB")]
    [InlineData("headers over 32 KiB")]
    [InlineData("a 40 KiB Authorization")]
    public async Task A14_UplinkHeadOverTheBudget_ClosedWithoutAnAnswer_NeverReachesKestrelsLimitsNorTheEndpoint_EvenWithAValidToken(string shape)
    {
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend());
        using var watch = new UplinkWatch(tunnel);
        var registered = tunnel.Uplinks.RegisteredCount;
        var (target, authorization, extra) = OverBudget(tunnel, shape);

        // Before the budget, these got 431 or 414 from Kestrel (or, for the 6 KiB header, an uplink): now the connection
        // is closed once 4 KiB have arrived without the end of the head, before Kestrel has parsed it.
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        await raw.SendAsync(UplinkHead(tunnel, target, authorization, extra));
        var answer = await raw.ReadUntilClosedAsync();

        Assert.Empty(answer);
        Assert.True(raw.ClosedByPeer);
        Assert.Equal(1, PreAuth(tunnel).ClosedForBytes);
        Assert.Equal(0, tunnel.Uplinks.RejectedCount);
        Assert.Equal(registered, tunnel.Uplinks.RegisteredCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task A14_UplinkHeadOverTheBudget_OnAnEndpointFromKestrelEndpointsConfiguration_Closed()
    {
        // Kestrel:Endpoints (as the Kubernetes manifests configure the server) replace the URLs; the budget goes on
        // those endpoints as well.
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ServerArgs = ["--Kestrel:Endpoints:Public:Url=http://127.0.0.1:0"],
        });
        using var watch = new UplinkWatch(tunnel);
        var (target, authorization, extra) = OverBudget(tunnel, "a 6 KiB header");

        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        await raw.SendAsync(UplinkHead(tunnel, target, authorization, extra));

        Assert.Empty(await raw.ReadUntilClosedAsync());
        Assert.Equal(1, PreAuth(tunnel).ClosedForBytes);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task A14_UplinkHeadWithinTheBudgetButOver100Headers_KestrelAnswers431_EvenWithAValidToken()
    {
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend());
        using var watch = new UplinkWatch(tunnel);
        var registered = tunnel.Uplinks.RegisteredCount;
        var extra = new StringBuilder();
        for (var i = 0; i < 101; i++)
        {
            extra.Append(System.Globalization.CultureInfo.InvariantCulture, $"X-H{i}: v\r\n");
        }

        // About 1.2 KiB: within the budget, so Kestrel's own limits still apply under it.
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        await raw.SendAsync(UplinkHead(tunnel, UplinkHandshake.DefaultPath, $"Bearer {tunnel.Token}", extra.ToString()));
        var responses = await raw.ReadResponsesUntilClosedAsync();

        var response = Assert.Single(responses);
        Assert.Equal(431, response.StatusCode);
        Assert.True(raw.ClosedByPeer);
        Assert.Equal(0, PreAuth(tunnel).ClosedForBytes);
        Assert.Equal(0, tunnel.Uplinks.RejectedCount);
        Assert.Equal(registered, tunnel.Uplinks.RegisteredCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task A14_PublicRequestWithA20KiBHeader_Served_WhileTheSameHeadOnAnUplinkRequestIsClosed()
    {
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend());
        using var watch = new UplinkWatch(tunnel);
        var pad = $"X-Pad: {new string('p', 20 * 1024)}\r\n";

        // Public traffic keeps Kestrel's limits alone (32 KiB of header fields): the budget never looks past its target.
        await using (var entry = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl))
        {
            await entry.SendAsync($"GET {tunnel.Target("/loadtest/get")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n{pad}\r\n");
            var response = await entry.ReadResponseAsync();
            Assert.Equal(200, response?.StatusCode);
        }

        await using (var uplink = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl))
        {
            await uplink.SendAsync(UplinkHead(tunnel, UplinkHandshake.DefaultPath, $"Bearer {tunnel.Token}", pad));
            Assert.Empty(await uplink.ReadUntilClosedAsync());
        }

        Assert.Equal(1, PreAuth(tunnel).ClosedForBytes);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task A14_FramesPipelinedBehindAValidUplinkHead_NotCounted_TheUplinkCarriesThem_WhileAHeadOverTheBudgetIsClosed()
    {
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend(), startClient: false);
        const int Pings = 300;
        var frames = PipelinedFrames(Pings);
        Assert.True(frames.Length > 4096);

        // A client that trusts its token sends its first frames right behind the head, in the same segment: SETTINGS,
        // then 300 PINGs (5 KiB). They are read only after the token was accepted, so they do not count.
        await using (var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl))
        {
            await raw.SendAsync([.. Encoding.Latin1.GetBytes(UplinkHead(tunnel, UplinkHandshake.DefaultPath, $"Bearer {tunnel.Token}", string.Empty)), .. frames]);
            var upgrade = await raw.ReadResponseAsync(headRequest: true);
            Assert.Equal(101, upgrade?.StatusCode);
            Assert.Equal(Pings, await CountPingAcksAsync(raw, Pings));
            Assert.Equal(1, tunnel.Uplinks.RegisteredCount);
        }

        // The same frames behind a head padded past 4 KiB: the head is what the budget counts.
        await using (var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl))
        {
            var padded = UplinkHead(tunnel, UplinkHandshake.DefaultPath, $"Bearer {tunnel.Token}", $"X-Pad: {new string('p', 4 * 1024)}\r\n");
            await raw.SendAsync([.. Encoding.Latin1.GetBytes(padded), .. frames]);
            Assert.Empty(await raw.ReadUntilClosedAsync());
        }

        Assert.Equal(1, PreAuth(tunnel).ClosedForBytes);
        Assert.Equal(1, tunnel.Uplinks.RegisteredCount);
    }

    [Fact]
    public async Task A14_UplinkHeadOverTheBudget_OverTls_ClosedAfterTheHandshake_PublicTrafficOverTlsUntouched()
    {
        using var certificate = TestCertificates.CreateSelfSigned();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ServerCertificate = certificate,
            ConfigureClient = o => o.ServerCertificateSha256 = TestCertificates.Sha256Hex(certificate),
        });
        using var watch = new UplinkWatch(tunnel);
        var registered = tunnel.Uplinks.RegisteredCount;
        var pad = $"X-Pad: {new string('p', 6 * 1024)}\r\n";

        // Kestrel puts endpoint-default middleware outside TLS; the budget must still count the plaintext. A valid token
        // and a 6 KiB header: upgraded without the budget, closed with it.
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, tunnel.ServerUrl.Port).DefaultTimeout();
            await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == certificate.GetCertHashString(),
            }).DefaultTimeout();
            await tls.WriteAsync(Encoding.Latin1.GetBytes(UplinkHead(tunnel, UplinkHandshake.DefaultPath, $"Bearer {tunnel.Token}", pad))).DefaultTimeout();
            Assert.Empty(await ReadUntilClosedAsync(tls));
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, tunnel.Url("/loadtest/get"));
        request.Headers.TryAddWithoutValidation("X-Pad", new string('p', 20 * 1024));
        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        Assert.Equal(1, PreAuth(tunnel).ClosedForBytes);
        Assert.Equal(0, tunnel.Uplinks.RejectedCount);
        Assert.Equal(registered, tunnel.Uplinks.RegisteredCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task DedicatedListener_ConnectionThatSendsNothing_ClosedAfterThePreAuthTimeout()
    {
        var time = new ArmedTimeProvider(PreAuthTimeout);
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            StartBackend = false,
            StartClient = false,
            ServerArgs = DedicatedListenerArgs,
            ConfigureServerHost = b => b.Services.AddSingleton<TimeProvider>(time),
            ConfigureServer = o => o.UplinkPreAuth.Timeout = PreAuthTimeout,
        });
        Assert.NotNull(tunnel.UplinkListenerUrl);

        // On the dedicated listener the clock runs from the accept: a connection that never sends a byte does not
        // wait for Kestrel's keep-alive timeout (2 min 10 s).
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.UplinkListenerUrl);
        await time.WhenArmedAsync(1).DefaultTimeout();
        var closed = raw.ReadUntilClosedAsync();
        time.Advance(PreAuthTimeout);

        Assert.Empty(await closed.DefaultTimeout());
        Assert.Equal(1, PreAuth(tunnel).ClosedForTimeout);
    }

    [Fact]
    public async Task DedicatedListener_ServesOnlyTheUplink_TheClientConnectsThroughIt_ThePublicPortNoLongerServesIt()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { ServerArgs = DedicatedListenerArgs });
        var uplinkListener = Assert.IsType<Uri>(tunnel.UplinkListenerUrl);
        Assert.NotEqual(tunnel.ServerUrl.Port, uplinkListener.Port);
        using var watch = new UplinkWatch(tunnel);

        // The client dialled the uplink listener (TestTunnel points it there); the public port serves its session.
        await watch.AssertHealthyAsync(expectedUplinks: 2);

        foreach (var path in new[] { "healthz", "metrics", $"session/{tunnel.SessionId:D}/loadtest/get" })
        {
            using var onUplinkListener = await tunnel.Http.GetAsync(new Uri(uplinkListener, path)).DefaultTimeout();
            Assert.Equal(HttpStatusCode.NotFound, onUplinkListener.StatusCode);
        }

        using var uplinkOnPublic = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, "tunnel/connect")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.NotFound, uplinkOnPublic.StatusCode);
        using var health = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, "healthz")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        // A wrong token on the uplink listener is answered as on the shared port.
        await using var raw = await RawHttpConnection.ConnectAsync(uplinkListener);
        await raw.SendAsync(UplinkHead(tunnel, UplinkHandshake.DefaultPath, "Bearer t2test_" + new string('0', 64), string.Empty));
        Assert.Equal(401, Assert.Single(await raw.ReadResponsesUntilClosedAsync()).StatusCode);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("Content-Length")]
    [InlineData("chunked")]
    [InlineData("Content-Length, no Connection: Upgrade")]
    [InlineData("chunked, no Connection: Upgrade")]
    public async Task A14_UplinkRequestWithABody_400Unread_ClosedAtOnce_NoSessionState_EvenWithAValidToken(string shape)
    {
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend());
        using var watch = new UplinkWatch(tunnel);
        var registered = tunnel.Uplinks.RegisteredCount;
        var chunked = shape.StartsWith("chunked", StringComparison.Ordinal);
        var head = UplinkHead(tunnel, UplinkHandshake.DefaultPath, $"Bearer {tunnel.Token}", chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 1000000\r\n");
        if (shape.Contains("no Connection", StringComparison.Ordinal))
        {
            head = head.Replace("Connection: Upgrade\r\n", string.Empty, StringComparison.Ordinal);
        }

        // The head and the first bytes of a body that would be far longer: an answer can only come if the server
        // decides without reading it, and the connection must end with the answer, not after Kestrel has drained
        // the body for its 5 s RequestBodyDrainTimeout.
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        var started = Stopwatch.StartNew();
        await raw.SendAsync(head + (chunked ? "fffff\r\n0123456789" : "0123456789"));
        var responses = await raw.ReadResponsesUntilClosedAsync();
        started.Stop();
        output.WriteLine($"[test] answered and closed after {started.ElapsedMilliseconds} ms");

        var response = Assert.Single(responses);
        Assert.Equal(400, response.StatusCode);
        Assert.Contains("must not have a body", response.BodyText, StringComparison.Ordinal);
        Assert.True(raw.ClosedByPeer);
        // Kestrel's drain would keep it open 5 s; the bound leaves room for a busy machine, not for the drain.
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(4), $"The connection stayed open {started.ElapsedMilliseconds} ms.");
        Assert.Equal(1, tunnel.Uplinks.RejectedCount);
        Assert.Equal(registered, tunnel.Uplinks.RegisteredCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("a wrong token")]
    [InlineData("no Authorization")]
    [InlineData("the right token with the Basic scheme")]
    [InlineData("the right token in the query string")]
    public async Task A14_BadCredential_401AtOnce_NoUpgrade_PipelinedBytesIgnored(string credential)
    {
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend());
        using var watch = new UplinkWatch(tunnel);
        var registered = tunnel.Uplinks.RegisteredCount;
        var (target, authorization) = credential switch
        {
            "a wrong token" => (UplinkHandshake.DefaultPath, "Bearer t2test_" + new string('0', 64)),
            "no Authorization" => (UplinkHandshake.DefaultPath, null),
            "the right token with the Basic scheme" => (UplinkHandshake.DefaultPath, "Basic " + tunnel.Token),
            _ => ($"{UplinkHandshake.DefaultPath}?access_token={tunnel.Token}", (string?)null),
        };

        // A client that trusts its token sends its first frames right behind the head; they must never be read as
        // frames, nor as another request.
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        var started = Stopwatch.StartNew();
        await raw.SendAsync(UplinkHead(tunnel, target, authorization, string.Empty) + new string('\0', 4096));
        var responses = await raw.ReadResponsesUntilClosedAsync();
        started.Stop();
        output.WriteLine($"[test] answered and closed after {started.ElapsedMilliseconds} ms");

        var response = Assert.Single(responses);
        Assert.Equal(401, response.StatusCode);
        Assert.Contains("Bearer", response.Header("WWW-Authenticate"), StringComparison.Ordinal);
        Assert.Null(response.Header("Upgrade"));
        Assert.Null(response.Header(UplinkHandshake.SessionHeader));
        Assert.True(raw.ClosedByPeer);
        // No timeout is involved: milliseconds here, and the bound only leaves room for a busy machine.
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(4), $"The 401 took {started.ElapsedMilliseconds} ms.");
        Assert.Equal(1, tunnel.Uplinks.RejectedCount);
        Assert.Equal(registered, tunnel.Uplinks.RegisteredCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("binary garbage")]
    [InlineData("a TLS ClientHello on the cleartext port")]
    [InlineData("an HTTP/2 preface")]
    public async Task A14_GarbageInsteadOfARequest_RefusedAndClosed_EndpointNeverRuns(string garbage)
    {
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend());
        using var watch = new UplinkWatch(tunnel);
        var bytes = garbage switch
        {
            "binary garbage" => Garbage(4096),

            // A TLS 1.2 record header announcing a ClientHello, then the start of one (what a TLS client sends first).
            "a TLS ClientHello on the cleartext port" => [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, .. Garbage(512)],
            _ => Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0"),
        };

        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        await raw.SendAsync(bytes);
        var answer = await raw.ReadUntilClosedAsync();

        if (garbage == "an HTTP/2 preface")
        {
            // The cleartext port speaks only HTTP/1.1: Kestrel answers with GOAWAY(HTTP_1_1_REQUIRED) and closes.
            Assert.True(answer.Length >= 17, $"{answer.Length} bytes");
            Assert.Equal(0x7, answer[3]);
            Assert.Equal(0xd, answer[16]);
        }
        else
        {
            Assert.StartsWith("HTTP/1.1 400 ", Encoding.Latin1.GetString(answer), StringComparison.Ordinal);
        }

        Assert.Equal(0, tunnel.Uplinks.RejectedCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task B7_TlsConnectionThatNeverSendsAClientHello_ClosedAfterHandshakeTimeout()
    {
        using var certificate = TestCertificates.CreateSelfSigned();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ServerCertificate = certificate,
            ConfigureClient = o => o.ServerCertificateSha256 = TestCertificates.Sha256Hex(certificate),
            ConfigureServerHost = b => b.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(https =>
            {
                https.ServerCertificate = certificate;
                https.HandshakeTimeout = TimeSpan.FromSeconds(1);
            })),
        });
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        var started = Stopwatch.StartNew();
        var answer = await raw.ReadUntilClosedAsync();
        started.Stop();
        output.WriteLine($"[test] closed after {started.ElapsedMilliseconds} ms");

        Assert.Empty(answer);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(6));
        Assert.Equal(0, tunnel.Uplinks.RejectedCount);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    private static readonly string[] DedicatedListenerArgs =
        ["--Tunnel:UplinkListenUrl=http://127.0.0.1:0", "--Tunnel:PublicBaseUrl=http://public.test"];

    private static UplinkPreAuth PreAuth(TestTunnel tunnel) => tunnel.Server.Services.GetRequiredService<UplinkPreAuth>();

    /// <summary>An uplink head with a valid token that is larger than the budget in one of several ways.</summary>
    private static (string Target, string Authorization, string Extra) OverBudget(TestTunnel tunnel, string shape)
    {
        var target = UplinkHandshake.DefaultPath;
        var authorization = $"Bearer {tunnel.Token}";
        var extra = new StringBuilder();
        switch (shape)
        {
            case "a 6 KiB header":
                extra.Append(System.Globalization.CultureInfo.InvariantCulture, $"X-Pad: {new string('b', 6 * 1024)}\r\n");
                break;
            case "request line over 8 KiB":
                target += "?pad=" + new string('a', 9 * 1024);
                break;
            case "headers over 32 KiB":
                for (var i = 0; i < 9; i++)
                {
                    extra.Append(System.Globalization.CultureInfo.InvariantCulture, $"X-Pad-{i}: {new string('b', 4000)}\r\n");
                }

                break;
            default:
                authorization = "Bearer " + new string('c', 40 * 1024);
                break;
        }

        return (target, authorization, extra.ToString());
    }

    /// <summary>An empty SETTINGS frame, then <paramref name="pings"/> PING frames (docs/protocol.md §3).</summary>
    private static byte[] PipelinedFrames(int pings)
    {
        var frames = new List<byte>();
        frames.AddRange(FrameHeader(length: 0, type: 0x4, flags: 0));
        for (var i = 0; i < pings; i++)
        {
            frames.AddRange(FrameHeader(length: 8, type: 0x6, flags: 0));
            frames.AddRange(BitConverter.GetBytes((long)i));
        }

        return [.. frames];

        static byte[] FrameHeader(int length, byte type, byte flags) => [(byte)(length >> 16), (byte)(length >> 8), (byte)length, type, flags, 0, 0, 0, 0];
    }

    /// <summary>Reads the server's frames until <paramref name="expected"/> PING ACKs have arrived (bounded).</summary>
    private static async Task<int> CountPingAcksAsync(RawHttpConnection raw, int expected)
    {
        var acks = 0;
        for (var frames = 0; acks < expected && frames < expected + 16; frames++)
        {
            var header = await raw.ReadBytesAsync(9);
            var length = (header[0] << 16) | (header[1] << 8) | header[2];
            await raw.ReadBytesAsync(length);
            if (header[3] == 0x6 && (header[4] & 0x1) != 0)
            {
                acks++;
            }
        }

        return acks;
    }

    private static async Task<byte[]> ReadUntilClosedAsync(Stream stream)
    {
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer).DefaultTimeout()) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (IOException)
        {
            // Reset rather than closed: closed all the same.
        }

        return received.ToArray();
    }

    /// <summary>The uplink upgrade head as the TunnelClient sends it, with the given target, Authorization and extra fields.</summary>
    private static string UplinkHead(TestTunnel tunnel, string target, string? authorization, string extraFields)
        => $"GET {target} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: Upgrade\r\nUpgrade: {UplinkHandshake.UpgradeToken}\r\n" +
           (authorization is null ? string.Empty : $"Authorization: {authorization}\r\n") +
           $"{UplinkHandshake.VersionHeader}: {UplinkHandshake.CurrentVersion}\r\n{UplinkHandshake.SessionHeader}: {tunnel.SessionId:D}\r\n" +
           extraFields + "\r\n";

    /// <summary>Bytes that are no HTTP request (fixed seed: the same every run), none of them CR or LF.</summary>
    private static byte[] Garbage(int length)
    {
        var bytes = new byte[length];
        new Random(20231010).NextBytes(bytes);
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] is (byte)'\r' or (byte)'\n')
            {
                bytes[i] = 0xff;
            }
        }

        return bytes;
    }
}
