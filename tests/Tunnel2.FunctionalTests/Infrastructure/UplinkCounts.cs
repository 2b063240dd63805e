using Microsoft.Extensions.DependencyInjection;
using Tunnel2.Server.Sessions;
using Tunnel2.Server.Uplink;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests.Infrastructure;

/// <summary>Uplink counts of one session on a server host, and a signal-based wait for a count (no polling).</summary>
internal static class UplinkCounts
{
    public static int Of(IServiceProvider server, Guid sessionId)
        => server.GetRequiredService<SessionRegistry>().TryGetSession(sessionId, out var session) ? session.UplinkCount : 0;

    /// <summary>Completes when <paramref name="sessionId"/> has exactly <paramref name="count"/> uplinks on that server.</summary>
    public static async Task WaitAsync(IServiceProvider server, Guid sessionId, int count)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var uplinks = server.GetRequiredService<UplinkEndpoint>();
        void OnChanged(Guid session, int current)
        {
            if (session == sessionId && current == count)
            {
                reached.TrySetResult();
            }
        }

        uplinks.UplinkCountChanged += OnChanged;
        try
        {
            if (Of(server, sessionId) == count)
            {
                return;
            }

            await reached.Task.DefaultTimeout();
        }
        finally
        {
            uplinks.UplinkCountChanged -= OnChanged;
        }
    }
}
