using System.Collections.Frozen;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Options;
using Tunnel2.Server;
using Tunnel2.Server.ProxyEntry;
using Tunnel2.Server.Sessions;
using Tunnel2.Server.Uplink;

namespace Tunnel2.Benchmarks.Sessions;

/// <summary>
/// Routing a public request: <see cref="ProxyTarget.TryParse"/> of the raw target
/// <c>/session/&lt;id&gt;/loadtest/get?x=1</c> and <see cref="SessionRegistry.TryGetSession"/>, with 100 and 100,000
/// registered sessions. Each operation takes the next of 1,024 pre-drawn ids (or their targets), so the large
/// registry is read all over, not from one warm cache line. The baseline is the naive route: <c>string.Split</c>
/// and <c>Guid.TryParse</c>.
/// </summary>
[MemoryDiagnoser]
public class SessionLookupBenchmarks
{
    private const int Lookups = 1024;

    private SessionRegistry _registry = null!;
    private Guid[] _ids = [];
    private string[] _targets = [];
    private int _next;

    [Params(100, 100_000)]
    public int SessionCount { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _registry = new SessionRegistry(Options.Create(new TunnelServerOptions()), TimeProvider.System);
        var principal = new TunnelPrincipal("bench", FrozenSet<Guid>.Empty);
        var all = new Guid[SessionCount];
        for (var i = 0; i < SessionCount; i++)
        {
            if (_registry.Register(principal, requestedId: null, out var session) != RegistrationStatus.Created || session is null)
            {
                throw new InvalidOperationException("Registration failed.");
            }

            all[i] = session.Id;
        }

        var random = new Random(42);
        _ids = new Guid[Lookups];
        _targets = new string[Lookups];
        for (var i = 0; i < Lookups; i++)
        {
            _ids[i] = all[random.Next(all.Length)];
            _targets[i] = $"/session/{_ids[i]:D}/loadtest/get?x=1";
        }

        if (!ParseAndLookup() || !NaiveSplitAndLookup())
        {
            throw new InvalidOperationException("A registered session was not found.");
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _registry.Dispose();

    [Benchmark]
    public bool TryGetSession() => _registry.TryGetSession(_ids[Next()], out _);

    [Benchmark]
    public bool ProxyTargetTryParse() => ProxyTarget.TryParse(_targets[Next()], out _) == ProxyTargetStatus.Ok;

    [Benchmark]
    public bool ParseAndLookup()
        => ProxyTarget.TryParse(_targets[Next()], out var target) == ProxyTargetStatus.Ok
            && _registry.TryGetSession(target.SessionId, out _);

    /// <summary>What a first version would write: split the path, parse the id, look it up.</summary>
    [Benchmark(Baseline = true)]
    public bool NaiveSplitAndLookup()
    {
        var parts = _targets[Next()].Split('/', 4);
        return parts.Length >= 3 && parts[1] == "session" && Guid.TryParse(parts[2], out var id) && _registry.TryGetSession(id, out _);
    }

    private int Next() => _next++ & (Lookups - 1);
}
