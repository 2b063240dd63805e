using System.Collections.Frozen;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Tunnel2.Server;
using Tunnel2.Server.Sessions;
using Tunnel2.Server.Uplink;

namespace Tunnel2.Tests.Server.Sessions;

public sealed class SessionRegistryTests : IDisposable
{
    private static readonly Guid s_fixedId = Guid.Parse("22222222-2222-2222-2222-222222222222");
    private readonly FakeTimeProvider _time = new();
    private readonly TunnelServerOptions _options = new() { SessionRetention = TimeSpan.FromMinutes(10), TombstoneRetention = TimeSpan.FromHours(1) };
    private readonly SessionRegistry _registry;
    private readonly TunnelPrincipal _alice = new("alice", new[] { s_fixedId }.ToFrozenSet());
    private readonly TunnelPrincipal _bob = new("bob", FrozenSet<Guid>.Empty);

    public SessionRegistryTests()
    {
        _registry = new SessionRegistry(Options.Create(_options), _time);
    }

    public void Dispose() => _registry.Dispose();

    [Fact]
    public void Register_WithoutRequest_IssuesRandomIdsFindableByLookup()
    {
        Assert.Equal(RegistrationStatus.Created, _registry.Register(_bob, null, out var first));
        Assert.Equal(RegistrationStatus.Created, _registry.Register(_bob, null, out var second));

        Assert.NotEqual(first!.Id, second!.Id);
        Assert.True(_registry.TryGetSession(first.Id, out var found));
        Assert.Same(first, found);
    }

    [Fact]
    public void Register_GrantedFixedId_Created_ThenSameOwnerJoins()
    {
        Assert.Equal(RegistrationStatus.Created, _registry.Register(_alice, s_fixedId, out var created));
        Assert.Equal(RegistrationStatus.Joined, _registry.Register(_alice, s_fixedId, out var joined));

        Assert.Equal(s_fixedId, created!.Id);
        Assert.Same(created, joined);
    }

    [Fact]
    public void Register_LiveIdOfAnotherPrincipal_Conflict()
    {
        _registry.Register(_alice, s_fixedId, out _);

        Assert.Equal(RegistrationStatus.Conflict, _registry.Register(_bob, s_fixedId, out var session));
        Assert.Null(session);
    }

    [Fact]
    public void Register_UngrantedUnknownId_GetsFreshRandomId()
    {
        var wanted = Guid.NewGuid();

        Assert.Equal(RegistrationStatus.Created, _registry.Register(_bob, wanted, out var session));
        Assert.NotEqual(wanted, session!.Id);
    }

    [Fact]
    public void Sweep_AfterRetention_ForgetsSession_TombstoneKeepsIdForOwnerOnly()
    {
        _registry.Register(_bob, null, out var session);
        var id = session!.Id;

        _time.Advance(TimeSpan.FromMinutes(11));
        _registry.Sweep();

        Assert.False(_registry.TryGetSession(id, out _));
        Assert.Equal(RegistrationStatus.Conflict, _registry.Register(_alice, id, out _));
        Assert.Equal(RegistrationStatus.Created, _registry.Register(_bob, id, out var revived));
        Assert.Equal(id, revived!.Id);
    }

    [Fact]
    public void Sweep_BeforeRetention_KeepsSession()
    {
        _registry.Register(_bob, null, out var session);

        _time.Advance(TimeSpan.FromMinutes(9));
        _registry.Sweep();

        Assert.True(_registry.TryGetSession(session!.Id, out _));
    }

    [Fact]
    public void Sweep_AfterTombstoneRetention_IdIsFreeAgain()
    {
        _registry.Register(_alice, s_fixedId, out _);
        _time.Advance(TimeSpan.FromMinutes(11));
        _registry.Sweep();
        _time.Advance(TimeSpan.FromHours(2));
        _registry.Sweep();

        // Bob was never granted the fixed id, so he gets a random one; but the tombstone no longer blocks him with 409.
        Assert.Equal(RegistrationStatus.Created, _registry.Register(_bob, s_fixedId, out var session));
        Assert.NotEqual(s_fixedId, session!.Id);
    }
}
