using System.Globalization;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Conditions with a deadline, for counters that raise no event (the server's stream gauge, the process's sockets):
/// re-read every 20 ms for at most the given time (the default test timeout unless said), then fail with a description.
/// </summary>
internal static class Eventually
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    public static Task TrueAsync(Func<bool> condition, Func<string> describe, TimeSpan? within = null)
        => TrueAsync(() => Task.FromResult(condition()), describe, within);

    public static async Task TrueAsync(Func<Task<bool>> condition, Func<string> describe, TimeSpan? within = null)
    {
        var limit = within ?? TimeoutExtensions.DefaultTimeoutValue;
        var deadline = DateTime.UtcNow + limit;
        while (!await condition().DefaultTimeout())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Not reached within {limit.TotalSeconds:0.#} s: {describe()}");
            }

            await Task.Delay(PollInterval);
        }
    }

    /// <summary>The server's <c>tunnel2_active_streams</c> gauge (streams open on all uplinks) from /metrics.</summary>
    public static async Task<int> ActiveStreamsAsync(TestTunnel tunnel)
    {
        using var response = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, "metrics")).DefaultTimeout();
        var exposition = await response.Content.ReadAsStringAsync().DefaultTimeout();
        var line = exposition.Split('\n').Single(l => l.StartsWith("tunnel2_active_streams ", StringComparison.Ordinal));
        return (int)double.Parse(line.AsSpan("tunnel2_active_streams ".Length), CultureInfo.InvariantCulture);
    }

    /// <summary>Waits until the server's stream gauge reads zero: every stream opened on the uplinks has been released.</summary>
    public static async Task NoActiveStreamsAsync(TestTunnel tunnel)
    {
        var last = -1;
        await TrueAsync(async () => (last = await ActiveStreamsAsync(tunnel)) == 0, () => $"tunnel2_active_streams is {last}, expected 0");
    }
}
