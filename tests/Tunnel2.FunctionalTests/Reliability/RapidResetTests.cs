using System.Buffers;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Tunnel2.Client.Forwarding;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// HTTP/2 rapid reset at the public entry (reliability.md §2 D6, CVE-2023-44487): HEADERS immediately followed by
/// RST_STREAM, thousands of times, by hand over h2 (TLS with ALPN; the cleartext port speaks only HTTP/1.1 and answers
/// an HTTP/2 preface with GOAWAY HTTP_1_1_REQUIRED). Whatever Kestrel does with the abusive connection, the tunnel must
/// lose nothing: the session keeps its uplinks, every stream the requests opened over the uplinks is released, every
/// request that reached the backend is cancelled there, both ends of every socket are closed, and ordinary requests
/// work afterwards. Runs alone (the socket count is the whole process's).
/// </summary>
[Collection(StreamLimitsCollection.Name)]
public sealed class RapidResetTests(ITestOutputHelper output)
{
    private const int Streams = 2_000;

    /// <summary>Kestrel's names (ConnectionEndReason as <c>error.type</c>) for its rapid-reset defences.</summary>
    private static readonly string[] RapidResetDefences = ["stream_reset_limit_exceeded", "output_queue_size_exceeded"];

    [Fact]
    public async Task D6_RapidResetFlood_KestrelEndsTheConnection_SessionUnharmed_EverythingReleased()
    {
        await using var harness = await Harness.StartAsync(output);
        using var watch = new UplinkWatch(harness.Tunnel);
        var sockets = await harness.BaselineSocketsAsync();
        var h2 = await RawHttp2Connection.ConnectAsync(harness.Tunnel.ServerUrl, harness.Certificate);
        bool survived;
        int sent;
        RecordedRequest[] heldAtBackend;
        try
        {
            // Ten ordinary requests first, which reach the backend and wait there: the abusive connection carries real work.
            var held = new ArrayBufferWriter<byte>();
            for (var i = 0; i < 10; i++)
            {
                harness.WriteGet(held, StreamId(i), $"hang/held-{i}");
            }

            await h2.SendAsync(held.WrittenMemory);
            heldAtBackend = await harness.WaitForArrivalsAsync("/hang/held-", 10);

            // The flood: HEADERS + RST_STREAM(CANCEL) pairs, 100 per write, never waiting for the server, until 2,000
            // are out or the server has ended the connection.
            sent = 0;
            for (var batch = 0; batch < Streams / 100 && !h2.Closed.IsCompleted; batch++)
            {
                var frames = new ArrayBufferWriter<byte>();
                for (var j = 0; j < 100; j++)
                {
                    var id = StreamId(10 + sent + j);
                    harness.WriteGet(frames, id, $"hang/rr-{id}");
                    RawHttp2Connection.WriteRstStream(frames, id, Http2Error.Cancel);
                }

                try
                {
                    await h2.SendAsync(frames.WrittenMemory);
                }
                catch (IOException)
                {
                    break;
                }

                sent += 100;
            }

            survived = await h2.PingAsync();
            await harness.WaitForEntryIdleAsync();
            var ends = harness.ConnectionEnds.On(harness.Tunnel.ServerUrl.Port).Where(e => e.Protocol == "2").ToList();
            output.WriteLine($"[test] pairs sent {sent}; connection {(survived ? "kept" : "ended by the server")}; GOAWAY {(h2.GoAwayReceived.IsCompleted ? (await h2.GoAwayReceived).Error : "none")}; " +
                $"RST_STREAM received [{string.Join(", ", h2.ResetsReceived.Select(r => $"{r.Key} x{r.Value}"))}]; requests at the entry {harness.Entry.Started}, at the backend {harness.Backend.Requests.Count}; " +
                $"Kestrel's record of the h2 connection's end: [{string.Join(", ", ends.Select(e => e.Error ?? "no error"))}]");

            if (survived)
            {
                // Kestrel kept up with the resets: nothing piled up, so it had no reason to act. The connection is still
                // usable, and the held requests end when we cancel them.
                Assert.False(h2.GoAwayReceived.IsCompleted, "A GOAWAY arrived although the connection still answers PING.");
                Assert.Equal(Streams, sent);
                Assert.Empty(ends);
                var cancel = new ArrayBufferWriter<byte>();
                for (var i = 0; i < 10; i++)
                {
                    RawHttp2Connection.WriteRstStream(cancel, StreamId(i), Http2Error.Cancel);
                }

                await h2.SendAsync(cancel.WrittenMemory);
            }
            else
            {
                // Kestrel's CVE-2023-44487 defence: streams reset before their requests finish stay tracked; beyond 200 it
                // refuses new ones with RST_STREAM(ENHANCE_YOUR_CALM), and it ends the connection after 100 refusals in
                // 5 s (GOAWAY ENHANCE_YOUR_CALM) or as soon as more than 200 frames wait to be written to it (a TCP reset,
                // which can swallow the GOAWAY and the refusals before them). What the client read must be exactly that,
                // and when Kestrel has recorded the end, the reason must be one of those defences.
                Assert.True(h2.Closed.IsCompleted, "PING was not answered, yet the connection is open.");
                if (h2.GoAwayReceived.IsCompleted)
                {
                    Assert.Equal(Http2Error.EnhanceYourCalm, (await h2.GoAwayReceived).Error);
                }

                Assert.All(h2.ResetsReceived.Keys, code => Assert.Equal(Http2Error.EnhanceYourCalm, code));
                Assert.All(ends, end => Assert.Contains(end.Error, RapidResetDefences));
            }
        }
        finally
        {
            await h2.DisposeAsync();
        }

        // The requests that were waiting at the backend are cancelled there, through the tunnel, either way.
        foreach (var request in heldAtBackend)
        {
            Assert.True(await request.Finished.DefaultTimeout(), $"{request} should have been aborted at the backend.");
        }

        await harness.AssertEverythingReleasedAsync();
        await harness.AssertSocketsReleasedAsync(sockets);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
        await harness.AssertHttp2RequestWorksAsync();
    }

    [Fact]
    public async Task D6_CancelHeavyClient_WithinKestrelsBudget_ConnectionKept_EveryResetReleased()
    {
        await using var harness = await Harness.StartAsync(output);
        using var watch = new UplinkWatch(harness.Tunnel);
        var sockets = await harness.BaselineSocketsAsync();
        await using var h2 = await RawHttp2Connection.ConnectAsync(harness.Tunnel.ServerUrl, harness.Certificate);
        var finishedBefore = harness.Entry.Finished;

        // 40 rounds of 50 streams cancelled at once and one cancelled once the backend has it, each round sent only after
        // the entry has finished every request of the previous ones: a client that cancels nearly everything it asks for,
        // as fast as the server retires the cancelled requests. 2,040 streams on one connection.
        var streams = 0;
        for (var round = 0; round < 40; round++)
        {
            var frames = new ArrayBufferWriter<byte>();
            for (var j = 0; j < 50; j++)
            {
                var id = StreamId(streams++);
                harness.WriteGet(frames, id, $"hang/rr-{id}");
                RawHttp2Connection.WriteRstStream(frames, id, Http2Error.Cancel);
            }

            var lateId = StreamId(streams++);
            harness.WriteGet(frames, lateId, $"hang/late-{round}");
            await h2.SendAsync(frames.WrittenMemory);

            var late = (await harness.WaitForArrivalsAsync($"/hang/late-{round}", 1)).Single();
            var cancel = new ArrayBufferWriter<byte>();
            RawHttp2Connection.WriteRstStream(cancel, lateId, Http2Error.Cancel);
            await h2.SendAsync(cancel.WrittenMemory);

            Assert.True(await late.Finished.DefaultTimeout(), $"{late} should have been aborted at the backend.");
            await harness.Entry.WhenFinishedAsync(finishedBefore + streams).DefaultTimeout();
        }

        Assert.True(await h2.PingAsync(), $"The connection ended: {h2.EndedBy?.Message}");
        Assert.False(h2.GoAwayReceived.IsCompleted);
        Assert.False(h2.ResetsReceived.ContainsKey(Http2Error.EnhanceYourCalm), "Kestrel refused streams with ENHANCE_YOUR_CALM.");
        Assert.DoesNotContain(harness.ConnectionEnds.On(harness.Tunnel.ServerUrl.Port), e => e.Protocol == "2");
        Assert.Equal(40, harness.Backend.Matching("/hang/late-").Length);
        output.WriteLine($"[test] {streams} streams; backend saw {harness.Backend.Requests.Count} (40 of them cancelled late)");

        await harness.AssertEverythingReleasedAsync();
        await h2.DisposeAsync(); // the client closes; both ends must go
        await harness.AssertSocketsReleasedAsync(sockets);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
        await harness.AssertHttp2RequestWorksAsync();
    }

    /// <summary>The n-th client stream id: odd, increasing (RFC 9113 §5.1.1).</summary>
    private static int StreamId(int n) => 1 + (2 * n);

    /// <summary>A TLS tunnel (h2 needs ALPN) with the recording backend, an entry request counter and Kestrel's connection ends.</summary>
    private sealed class Harness : IAsyncDisposable
    {
        private readonly ITestOutputHelper _output;

        private Harness(TestTunnel tunnel, X509Certificate2 certificate, RecordingBackend backend, EntryRequestCounter entry, KestrelConnectionEnds ends, ITestOutputHelper output)
        {
            _output = output;
            Tunnel = tunnel;
            Certificate = certificate;
            Backend = backend;
            Entry = entry;
            ConnectionEnds = ends;
        }

        public TestTunnel Tunnel { get; }

        public X509Certificate2 Certificate { get; }

        public RecordingBackend Backend { get; }

        public EntryRequestCounter Entry { get; }

        public KestrelConnectionEnds ConnectionEnds { get; }

        public static async Task<Harness> StartAsync(ITestOutputHelper output)
        {
            var certificate = TestCertificates.CreateSelfSigned();
            var backend = new RecordingBackend();
            var entry = new EntryRequestCounter();
            var ends = new KestrelConnectionEnds();
            try
            {
                var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
                {
                    ServerCertificate = certificate,
                    ConfigureClient = o => o.ServerCertificateSha256 = TestCertificates.Sha256Hex(certificate),
                    MapBackend = backend.Map,
                    ConfigureServerHost = b => b.Services.AddSingleton<IStartupFilter>(entry),
                });
                return new Harness(tunnel, certificate, backend, entry, ends, output);
            }
            catch
            {
                ends.Dispose();
                certificate.Dispose();
                throw;
            }
        }

        public void WriteGet(ArrayBufferWriter<byte> frames, int streamId, string rest)
            => RawHttp2Connection.WriteGet(frames, streamId, "https", Tunnel.ServerUrl.Authority, Tunnel.Target(rest));

        /// <summary>Waits until <paramref name="count"/> requests whose target contains <paramref name="fragment"/> have reached the backend.</summary>
        public async Task<RecordedRequest[]> WaitForArrivalsAsync(string fragment, int count)
        {
            // Bounded: every arrival is consumed once, and a test sends at most a few thousand requests.
            for (var i = 0; i < 10_000 && Backend.Matching(fragment).Length < count; i++)
            {
                await Backend.NextArrivalAsync();
            }

            var matching = Backend.Matching(fragment);
            Assert.Equal(count, matching.Length);
            return matching;
        }

        /// <summary>The entry has no request in flight (re-read: the counter has no "all done" signal for an unknown total).</summary>
        public Task WaitForEntryIdleAsync()
            => Eventually.TrueAsync(() => Entry.InFlight == 0, () => $"{Entry.InFlight} request(s) still in flight at the entry");

        /// <summary>
        /// Nothing the abuse caused is still held: no request in flight at the entry, no stream on the uplinks, no
        /// forwarding slot in the client, and every request that reached the backend has ended there, aborted.
        /// </summary>
        public async Task AssertEverythingReleasedAsync()
        {
            await WaitForEntryIdleAsync();
            await Eventually.NoActiveStreamsAsync(Tunnel);
            var forwarder = Tunnel.Client!.Services.GetRequiredService<BackendForwarder>();
            await Eventually.TrueAsync(() => forwarder.Admitted == 0, () => $"the client still holds {forwarder.Admitted} forwarding slot(s)");

            // The client has let go of every backend request, so the backend's list is complete: each one has ended, and
            // since /hang never answers by itself, each ended because the tunnel cancelled it.
            foreach (var request in Backend.Requests)
            {
                Assert.True(await request.Finished.DefaultTimeout(), $"{request} ended without being aborted.");
            }
        }

        /// <summary>
        /// The process's socket count once the tunnel is warm: one request through it and one /metrics scrape first, so
        /// the pooled connections those leave are part of the baseline.
        /// </summary>
        public async Task<int> BaselineSocketsAsync()
        {
            using (var response = await Tunnel.Http.GetAsync(Tunnel.Url("/loadtest/get")).DefaultTimeout())
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            await Eventually.NoActiveStreamsAsync(Tunnel);
            await WaitForEntryIdleAsync();
            var baseline = OpenSockets.Count();
            _output.WriteLine($"[test] sockets at baseline: {baseline}");
            return baseline;
        }

        /// <summary>Both ends of the abusive connection and of every backend connection it caused are closed.</summary>
        public async Task AssertSocketsReleasedAsync(int baseline)
        {
            var now = 0;
            await Eventually.TrueAsync(() => (now = OpenSockets.Count()) <= baseline, () => $"{now} sockets open, baseline {baseline}");
            _output.WriteLine($"[test] sockets after release: {now}");
        }

        /// <summary>An ordinary HTTP/2 request through the same entry works.</summary>
        public async Task AssertHttp2RequestWorksAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, Tunnel.Url("/loadtest/get")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            using var response = await Tunnel.Http.SendAsync(request).DefaultTimeout();
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        public async ValueTask DisposeAsync()
        {
            // Kestrel 10.0 sometimes never completes an HTTP/2 connection it aborted for rapid reset (its socket is
            // closed, but the connection stays registered), and a graceful stop would wait the host's whole
            // ShutdownTimeout (30 s) for it. Stop with a short grace instead; TestTunnel's own stop then finds it stopped.
            await Tunnel.StopClientAsync();
            using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2)))
            {
                await Tunnel.Server.StopAsync(grace.Token).DefaultTimeout();
            }

            await Tunnel.DisposeAsync();
            ConnectionEnds.Dispose();
            Certificate.Dispose();
        }
    }
}
