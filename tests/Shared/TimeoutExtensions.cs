using System.Runtime.CompilerServices;

namespace Tunnel2.Testing;

/// <summary>
/// Deadlines for awaits in tests (YARP's and Kestrel's <c>DefaultTimeout()</c>): a hung await fails the test with the
/// file and line that waited, instead of hanging the run.
/// </summary>
public static class TimeoutExtensions
{
    /// <summary>Long enough for a loaded 2-core CI machine, short enough that a hang fails fast.</summary>
    public static readonly TimeSpan DefaultTimeoutValue = TimeSpan.FromSeconds(10);

    public static Task DefaultTimeout(this Task task, [CallerFilePath] string? filePath = null, [CallerLineNumber] int lineNumber = 0)
        => task.TimeoutAfter(DefaultTimeoutValue, filePath, lineNumber);

    public static Task<T> DefaultTimeout<T>(this Task<T> task, [CallerFilePath] string? filePath = null, [CallerLineNumber] int lineNumber = 0)
        => task.TimeoutAfter(DefaultTimeoutValue, filePath, lineNumber);

    public static Task DefaultTimeout(this ValueTask task, [CallerFilePath] string? filePath = null, [CallerLineNumber] int lineNumber = 0)
        => task.AsTask().TimeoutAfter(DefaultTimeoutValue, filePath, lineNumber);

    public static Task<T> DefaultTimeout<T>(this ValueTask<T> task, [CallerFilePath] string? filePath = null, [CallerLineNumber] int lineNumber = 0)
        => task.AsTask().TimeoutAfter(DefaultTimeoutValue, filePath, lineNumber);

    public static async Task TimeoutAfter(this Task task, TimeSpan timeout, [CallerFilePath] string? filePath = null, [CallerLineNumber] int lineNumber = 0)
    {
        try
        {
            await task.WaitAsync(timeout);
        }
        catch (TimeoutException ex) when (!task.IsCompleted)
        {
            throw new TimeoutException(CreateMessage(timeout, filePath, lineNumber), ex);
        }
    }

    public static async Task<T> TimeoutAfter<T>(this Task<T> task, TimeSpan timeout, [CallerFilePath] string? filePath = null, [CallerLineNumber] int lineNumber = 0)
    {
        try
        {
            return await task.WaitAsync(timeout);
        }
        catch (TimeoutException ex) when (!task.IsCompleted)
        {
            throw new TimeoutException(CreateMessage(timeout, filePath, lineNumber), ex);
        }
    }

    private static string CreateMessage(TimeSpan timeout, string? filePath, int lineNumber)
        => string.IsNullOrEmpty(filePath)
            ? $"The operation timed out after {timeout}."
            : $"The operation at {filePath}:{lineNumber} timed out after {timeout}.";
}
