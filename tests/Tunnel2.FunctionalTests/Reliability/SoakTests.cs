using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Protocol;
using Tunnel2.TestBackend;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// The short CI version of the soak (docs/reliability.md, "Soak"; the long one is tunnel2-load-tests/scripts/soak.sh):
/// steady load from a few loops while the real TunnelClient process is SIGKILLed and restarted three times. Every
/// response is either complete and correct or a clear error (502/503/504, no response at all, or a body that ends
/// in an abort); the tunnel answers after each restart; and at the end the server holds exactly the new client's
/// uplinks and no stream.
/// </summary>
public sealed class SoakTests(ITestOutputHelper output)
{
    private const int Loops = 4;
    private const int Kills = 3;

    /// <summary>Successful responses each loop must see between two kills, so every kill lands on a working tunnel under load.</summary>
    private const int OkPerLoopBetweenKills = 5;

    [Fact]
    public async Task ClientKilledThreeTimesUnderLoad_NoBadResponse_RecoversEachTime_UplinksAndStreamsBackToNormal()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            StartClient = false,
            Uplinks = 2,

            // As deployed (3 s): a request that arrives while the client restarts waits for the new uplink.
            ConfigureServer = o => o.UplinkWaitTimeout = TimeSpan.FromSeconds(3),
        });
        ClientProcess? client = ClientProcess.Start(tunnel, uplinks: 2);
        try
        {
            await tunnel.WaitForUplinkCountAsync(2);
            using var stop = new CancellationTokenSource();
            var load = new SoakLoad(tunnel, Loops, output);
            var loops = load.Start(stop.Token);

            await load.WhenEachLoopHasOkAsync(OkPerLoopBetweenKills).DefaultTimeout();
            for (var kill = 1; kill <= Kills; kill++)
            {
                var killed = tunnel.Uplinks.LiveConnections.Select(static pair => pair.Key).ToList();
                Assert.Equal(2, killed.Count);

                await client!.KillAsync();
                load.Note($"kill {kill}");

                // The server notices both dead uplinks by itself (the kernel closed the killed process's sockets).
                await Task.WhenAll(killed.Select(static connection => connection.Closed)).DefaultTimeout();
                await tunnel.WaitForUplinkCountAsync(0);
                await client.DisposeAsync();
                client = null;

                client = ClientProcess.Start(tunnel, uplinks: 2);
                await tunnel.WaitForUplinkCountAsync(2);
                load.Note($"restart {kill}: 2 uplinks");

                // Recovered: a plain request goes through the new client.
                using (var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout())
                {
                    Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                }

                await load.WhenEachLoopHasOkAsync(OkPerLoopBetweenKills).DefaultTimeout();
            }

            await stop.CancelAsync();
            await Task.WhenAll(loops).DefaultTimeout();
            output.WriteLine(load.Summary());

            Assert.True(load.Bad == 0, $"{load.Bad} BAD response(s): {string.Join("; ", load.BadReasons)}");
            Assert.True(load.Ok >= (Kills + 1) * Loops * OkPerLoopBetweenKills, $"only {load.Ok} ok responses");

            // Back to normal: the new client's two uplinks, one session, and every stream closed.
            Assert.Equal(2, tunnel.Uplinks.LiveUplinkCount);
            Assert.Equal(2, tunnel.UplinkCount);
            var metrics = await WaitForMetricAsync(tunnel, "tunnel2_active_streams", 0);
            Assert.Equal(2, MetricValue(metrics, $"tunnel2_uplinks{{session=\"{SessionIdRedaction.Redact(tunnel.SessionId)}\"}}"));
            Assert.Equal(1, MetricValue(metrics, "tunnel2_sessions"));
            Assert.Equal(0, tunnel.Uplinks.LiveConnections.Sum(static pair => pair.Key.ActiveStreamCount));
        }
        finally
        {
            if (client is not null)
            {
                await client.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// Scrapes the server's /metrics until <paramref name="series"/> has <paramref name="expected"/>, and returns that
    /// scrape. A stream leaves the table a moment after its last byte reached the public client and the server raises
    /// no event for it, so this is a condition with a deadline (the DefaultTimeout), not a sleep.
    /// </summary>
    private static async Task<string> WaitForMetricAsync(TestTunnel tunnel, string series, double expected)
    {
        using var deadline = new CancellationTokenSource(TimeoutExtensions.DefaultTimeoutValue);
        string exposition;
        while (true)
        {
            exposition = await tunnel.Http.GetStringAsync(new Uri(tunnel.ServerUrl, "metrics"), deadline.Token).DefaultTimeout();
            if (MetricValue(exposition, series) == expected)
            {
                return exposition;
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), deadline.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"{series} stayed at {MetricValue(exposition, series)} (expected {expected}) for {TimeoutExtensions.DefaultTimeoutValue.TotalSeconds} s.");
            }
        }
    }

    /// <summary>The value of one sample line (name with labels exactly as exposed), or NaN when absent.</summary>
    private static double MetricValue(string exposition, string series)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return double.Parse(line.AsSpan(series.Length + 1), CultureInfo.InvariantCulture);
            }
        }

        return double.NaN;
    }

    /// <summary>
    /// A few closed loops of the soak mix (small GET, deterministic bytes up to 1 MiB, echo up to 64 KiB, a chunked
    /// stream that takes ~200 ms, a 100 ms delay), each response read to the end and checked.
    /// </summary>
    private sealed class SoakLoad(TestTunnel tunnel, int loops, ITestOutputHelper output)
    {
        /// <summary>Each loop stops by itself after this many requests: bounded whatever happens.</summary>
        private const int MaxRequestsPerLoop = 5_000;

        private readonly Lock _lock = new();
        private readonly long[] _okPerLoop = new long[loops];
        private readonly List<(long Target, TaskCompletionSource Source)> _waiters = [];
        private readonly Dictionary<string, int> _errors = new(StringComparer.Ordinal);
        private readonly List<string> _badReasons = [];
        private readonly List<string> _notes = [];
        private readonly DateTime _started = DateTime.UtcNow;
        private long _ok;

        public long Ok => Interlocked.Read(ref _ok);

        public int Bad
        {
            get
            {
                lock (_lock)
                {
                    return _badReasons.Count;
                }
            }
        }

        public IReadOnlyList<string> BadReasons
        {
            get
            {
                lock (_lock)
                {
                    return [.. _badReasons];
                }
            }
        }

        public Task[] Start(CancellationToken stop)
            => [.. Enumerable.Range(0, _okPerLoop.Length).Select(loop => Task.Run(() => LoopAsync(loop, stop), CancellationToken.None))];

        /// <summary>Completes once every loop has had <paramref name="count"/> more successful responses than now.</summary>
        public Task WhenEachLoopHasOkAsync(int count)
        {
            lock (_lock)
            {
                var target = _okPerLoop.Min() + count;
                var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((target, source));
                CheckWaiters();
                return source.Task;
            }
        }

        public void Note(string text)
        {
            lock (_lock)
            {
                _notes.Add(string.Create(CultureInfo.InvariantCulture, $"{(DateTime.UtcNow - _started).TotalSeconds:0.00}s {text} (ok so far {Ok})"));
            }
        }

        public string Summary()
        {
            lock (_lock)
            {
                return $"ok {Ok}, BAD {_badReasons.Count}, errors: {(_errors.Count == 0 ? "none" : string.Join(", ", _errors.Select(static e => $"{e.Key} ×{e.Value}")))}\n{string.Join('\n', _notes)}";
            }
        }

        private async Task LoopAsync(int loop, CancellationToken stop)
        {
            var random = new Random(loop + 1);
            for (var i = 0; i < MaxRequestsPerLoop && !stop.IsCancellationRequested; i++)
            {
                var (kind, reason) = await ExecuteAsync(Next(random));
                lock (_lock)
                {
                    switch (kind)
                    {
                        case Outcome.Ok:
                            _ok++;
                            _okPerLoop[loop]++;
                            CheckWaiters();
                            break;
                        case Outcome.Error:
                            _errors[reason] = _errors.GetValueOrDefault(reason) + 1;
                            _notes.Add(string.Create(CultureInfo.InvariantCulture, $"{(DateTime.UtcNow - _started).TotalSeconds:0.00}s loop {loop}: {reason}"));
                            break;
                        default:
                            _badReasons.Add(reason);
                            output.WriteLine($"BAD: {reason}");
                            break;
                    }
                }
            }
        }

        private void CheckWaiters()
        {
            var reached = _okPerLoop.Min();
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (reached >= _waiters[i].Target)
                {
                    _waiters[i].Source.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }

        private static Expected Next(Random random)
        {
            var seed = (ulong)random.NextInt64(1, long.MaxValue);
            return random.Next(5) switch
            {
                0 => new Expected("loadtest/get", Kind.Get, -1, 0),
                1 => new Expected($"loadtest/bytes/{(long)random.Next(0, 1024 * 1024 + 1)}?seed={seed}", Kind.Bytes, -2, seed),
                2 => new Expected("loadtest/echo", Kind.Echo, random.Next(0, 64 * 1024 + 1), seed),
                3 => new Expected("loadtest/stream/10?size=4096&delayMs=20", Kind.Stream, 10 * 4096, 0),
                _ => new Expected("loadtest/delay/100", Kind.Get, -1, 0),
            };
        }

        private async Task<(Outcome Kind, string Reason)> ExecuteAsync(Expected expected)
        {
            using var request = new HttpRequestMessage(expected.Kind == Kind.Echo ? HttpMethod.Post : HttpMethod.Get, tunnel.Url(expected.Path));
            byte[]? sent = null;
            if (expected.Kind == Kind.Echo)
            {
                sent = new byte[expected.Length];
                TestBackendApp.FillDeterministic(sent, 0, expected.Seed);
                request.Content = new ByteArrayContent(sent);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            }

            HttpResponseMessage response;
            try
            {
                // The public client's own 30 s timeout bounds a request that never ends.
                response = await tunnel.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            }
            catch (HttpRequestException e)
            {
                return (Outcome.Error, $"no response ({e.HttpRequestError})");
            }
            catch (TaskCanceledException)
            {
                return (Outcome.Error, "timeout before the head");
            }

            using (response)
            {
                var status = (int)response.StatusCode;
                if (status is 502 or 503 or 504)
                {
                    return (Outcome.Error, $"status {status}");
                }

                if (status != 200)
                {
                    return (Outcome.Bad, $"unexpected status {status} for {expected.Path}");
                }

                byte[] body;
                try
                {
                    body = await response.Content.ReadAsByteArrayAsync();
                }
                catch (Exception e) when (e is HttpRequestException or IOException)
                {
                    return (Outcome.Error, "aborted mid-body");
                }
                catch (TaskCanceledException)
                {
                    return (Outcome.Error, "timeout mid-body");
                }

                var length = expected.Kind == Kind.Bytes
                    ? long.Parse(expected.Path.AsSpan("loadtest/bytes/".Length, expected.Path.IndexOf('?', StringComparison.Ordinal) - "loadtest/bytes/".Length), CultureInfo.InvariantCulture)
                    : expected.Length;
                if (response.Content.Headers.ContentLength is { } announced && announced != body.Length)
                {
                    return (Outcome.Bad, $"{body.Length} bytes with Content-Length {announced} for {expected.Path}");
                }

                if (length >= 0 && body.Length != length)
                {
                    return (Outcome.Bad, $"a body of {body.Length} bytes that looked complete, expected {length}, for {expected.Path}");
                }

                var want = new byte[body.Length];
                switch (expected.Kind)
                {
                    case Kind.Bytes:
                        TestBackendApp.FillDeterministic(want, 0, expected.Seed);
                        break;
                    case Kind.Echo:
                        want = sent!;
                        break;
                    case Kind.Stream:
                        FillStream(want, 4096);
                        break;
                    default:
                        return body.Length > 0 ? (Outcome.Ok, "ok") : (Outcome.Bad, $"an empty body for {expected.Path}");
                }

                var same = body.AsSpan().CommonPrefixLength(want);
                return same == body.Length ? (Outcome.Ok, "ok") : (Outcome.Bad, $"wrong content at byte {same} of {expected.Path}");
            }
        }

        /// <summary>TestBackend's <c>/loadtest/stream</c> pieces: "chunk 0003" padded with '.', the last byte '\n'.</summary>
        private static void FillStream(Span<byte> destination, int size)
        {
            for (var offset = 0; offset < destination.Length; offset += size)
            {
                var piece = destination.Slice(offset, Math.Min(size, destination.Length - offset));
                piece.Fill((byte)'.');
                var label = System.Text.Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"chunk {offset / size:D4}"));
                label.AsSpan(0, Math.Min(label.Length, piece.Length)).CopyTo(piece);
                piece[^1] = (byte)'\n';
            }
        }

        private enum Kind
        {
            Get,
            Bytes,
            Echo,
            Stream,
        }

        private enum Outcome
        {
            Ok,
            Error,
            Bad,
        }

        private sealed record Expected(string Path, Kind Kind, long Length, ulong Seed);
    }
}
