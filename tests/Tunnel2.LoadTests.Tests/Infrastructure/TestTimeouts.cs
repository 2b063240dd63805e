using System.Runtime.CompilerServices;

namespace Tunnel2.LoadTests.Tests.Infrastructure;

/// <summary>Every await in a test has a deadline; a hang fails with the caller's file and line instead of blocking the suite.</summary>
internal static class TestTimeouts
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(30);

    public static async Task DefaultTimeout(this Task task, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        try
        {
            await task.WaitAsync(Default);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"Timed out after {Default.TotalSeconds} s at {Path.GetFileName(file)}:{line}.", e);
        }
    }

    public static async Task<T> DefaultTimeout<T>(this Task<T> task, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        try
        {
            return await task.WaitAsync(Default);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"Timed out after {Default.TotalSeconds} s at {Path.GetFileName(file)}:{line}.", e);
        }
    }

    public static Task<T> DefaultTimeout<T>(this ValueTask<T> task, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0) =>
        task.AsTask().DefaultTimeout(file, line);
}
