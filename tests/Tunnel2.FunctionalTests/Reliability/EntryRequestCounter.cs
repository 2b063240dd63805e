using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Tunnel2.Protocol;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Counts the server's requests as its outermost middleware sees them (uplinks excluded: an uplink is one request that
/// lasts as long as its client): how many started, how many finished, and a signal when a given number has finished.
/// Register with <c>builder.Services.AddSingleton&lt;IStartupFilter&gt;(counter)</c>.
/// </summary>
internal sealed class EntryRequestCounter : IStartupFilter
{
    private readonly Lock _lock = new();
    private readonly List<(long Count, TaskCompletionSource Source)> _waiters = [];
    private long _started;
    private long _finished;

    public long Started => Interlocked.Read(ref _started);

    public long Finished => Interlocked.Read(ref _finished);

    public long InFlight => Started - Finished;

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(async (context, nextMiddleware) =>
        {
            if (context.Request.Path.StartsWithSegments(UplinkHandshake.DefaultPath, StringComparison.Ordinal))
            {
                await nextMiddleware(context);
                return;
            }

            Interlocked.Increment(ref _started);
            try
            {
                await nextMiddleware(context);
            }
            finally
            {
                OnFinished();
            }
        });
        next(app);
    };

    /// <summary>Completes once at least <paramref name="count"/> requests have finished since start.</summary>
    public Task WhenFinishedAsync(long count)
    {
        lock (_lock)
        {
            if (Finished >= count)
            {
                return Task.CompletedTask;
            }

            var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, source));
            return source.Task;
        }
    }

    private void OnFinished()
    {
        List<TaskCompletionSource>? ready = null;
        lock (_lock)
        {
            var finished = Interlocked.Increment(ref _finished);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (finished >= _waiters[i].Count)
                {
                    (ready ??= []).Add(_waiters[i].Source);
                    _waiters.RemoveAt(i);
                }
            }
        }

        ready?.ForEach(static source => source.TrySetResult());
    }
}
