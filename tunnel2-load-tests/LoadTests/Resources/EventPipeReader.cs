using Microsoft.Diagnostics.Tracing;

namespace Tunnel2.LoadTests.Resources;

/// <summary>The background thread that pumps an EventPipe session's events into its handlers until the session ends.</summary>
internal static class EventPipeReader
{
    public static Thread Start(EventPipeEventSource source, string name)
    {
        var thread = new Thread(() =>
        {
            try
            {
                source.Process();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The target exited or the session was stopped.
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
        return thread;
    }
}
