using System.Net;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Counts every uplink that joins or leaves the test session from the moment it is created, so a test can prove a
/// misbehaving public client cost the session nothing: no uplink dropped, none re-dialled (reliability.md §0 item 11).
/// </summary>
internal sealed class UplinkWatch : IDisposable
{
    private readonly TestTunnel _tunnel;
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Source)> _replacementWaiters = [];
    private int _changes;
    private int _lastCount;
    private bool _sawRemoval;
    private bool _sawAddition;

    public UplinkWatch(TestTunnel tunnel)
    {
        _tunnel = tunnel;
        _lastCount = tunnel.UplinkCount;
        tunnel.Uplinks.UplinkCountChanged += OnChanged;
    }

    public int Changes => Volatile.Read(ref _changes);

    /// <summary>
    /// The tunnel recovered: a normal request through the same session succeeds, and (unless
    /// <paramref name="uplinksMayChange"/>) the session kept exactly the uplinks it had.
    /// </summary>
    public async Task AssertHealthyAsync(int expectedUplinks, bool uplinksMayChange = false)
    {
        using var response = await _tunnel.Http.GetAsync(_tunnel.Url("/loadtest/get")).DefaultTimeout();
        var body = await response.Content.ReadAsStringAsync().DefaultTimeout();

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"The follow-up request got {(int)response.StatusCode}: {body}");
        Assert.Equal(expectedUplinks, _tunnel.UplinkCount);
        if (!uplinksMayChange)
        {
            Assert.True(Changes == 0, $"The session's uplinks changed {Changes} time(s) during a scenario that should not touch them.");
        }
    }

    /// <summary>
    /// Completes once, since this watch started, the server has dropped an uplink of the session and registered a new
    /// one, and the session has <paramref name="expected"/> uplinks: the client has replaced what it lost. Either order
    /// counts (the server may notice the loss before or after the client has re-dialled).
    /// </summary>
    public Task WaitForReplacementAsync(int expected)
    {
        lock (_lock)
        {
            if (_sawRemoval && _sawAddition && _lastCount == expected)
            {
                return Task.CompletedTask;
            }

            var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _replacementWaiters.Add((expected, source));
            return source.Task.DefaultTimeout();
        }
    }

    public void Dispose() => _tunnel.Uplinks.UplinkCountChanged -= OnChanged;

    private void OnChanged(Guid session, int count)
    {
        if (session != _tunnel.SessionId)
        {
            return;
        }

        Interlocked.Increment(ref _changes);
        List<TaskCompletionSource>? ready = null;
        lock (_lock)
        {
            _sawRemoval |= count < _lastCount;
            _sawAddition |= count > _lastCount;
            _lastCount = count;
            if (_sawRemoval && _sawAddition)
            {
                for (var i = _replacementWaiters.Count - 1; i >= 0; i--)
                {
                    if (_replacementWaiters[i].Count == count)
                    {
                        (ready ??= []).Add(_replacementWaiters[i].Source);
                        _replacementWaiters.RemoveAt(i);
                    }
                }
            }
        }

        ready?.ForEach(static r => r.TrySetResult());
    }
}
