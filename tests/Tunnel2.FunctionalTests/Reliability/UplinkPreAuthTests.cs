using System.Diagnostics;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Protocol;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// The pre-authentication budget of the uplink endpoint (reliability.md §2 A14, B7; §4.3 item 3): what a connection to
/// <c>/tunnel/connect</c> can cost before it has presented a valid token. The endpoint shares its port, and so its
/// Kestrel limits, with the public entry: the head must arrive within RequestHeadersTimeout and fit Kestrel's size
/// limits, an upgrade request may carry no body, and a bad credential is answered 401 at once and the connection closed.
/// Each test also proves nothing reached the session: no uplink registered, the live ones untouched.
/// </summary>
public sealed class UplinkPreAuthTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("stalls")]
    [InlineData("trickles")]
    public async Task B7_UplinkHeadNeverCompletes_408AndClosedAfterRequestHeadersTimeout_EndpointNeverRuns(string how)
    {
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
    [InlineData("request line over 8 KiB", 414)]
    [InlineData("headers over 32 KiB", 431)]
    [InlineData("more than 100 headers", 431)]
    [InlineData("a 40 KiB Authorization", 431)]
    public async Task A14_UplinkHeadOverKestrelsLimits_RejectedBeforeTheEndpoint_EvenWithAValidToken(string shape, int expected)
    {
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, new RecordingBackend());
        using var watch = new UplinkWatch(tunnel);
        var registered = tunnel.Uplinks.RegisteredCount;
        var target = UplinkHandshake.DefaultPath;
        var extra = new StringBuilder();
        var authorization = $"Bearer {tunnel.Token}";
        switch (shape)
        {
            case "request line over 8 KiB":
                target += "?pad=" + new string('a', 9 * 1024);
                break;
            case "headers over 32 KiB":
                for (var i = 0; i < 9; i++)
                {
                    extra.Append(System.Globalization.CultureInfo.InvariantCulture, $"X-Pad-{i}: {new string('b', 4000)}\r\n");
                }

                break;
            case "more than 100 headers":
                for (var i = 0; i < 101; i++)
                {
                    extra.Append(System.Globalization.CultureInfo.InvariantCulture, $"X-H{i}: v\r\n");
                }

                break;
            default:
                authorization = "Bearer " + new string('c', 40 * 1024);
                break;
        }

        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        await raw.SendAsync(UplinkHead(tunnel, target, authorization, extra.ToString()));
        var responses = await raw.ReadResponsesUntilClosedAsync();

        var response = Assert.Single(responses);
        Assert.Equal(expected, response.StatusCode);
        Assert.True(raw.ClosedByPeer);
        Assert.Equal(0, tunnel.Uplinks.RejectedCount);
        Assert.Equal(registered, tunnel.Uplinks.RegisteredCount);
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
