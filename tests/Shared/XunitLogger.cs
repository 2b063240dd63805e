using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Tunnel2.Testing;

/// <summary>Writes log entries to the test's output, so a failure carries the component's story (YARP's TestLoggerProvider).</summary>
public sealed class XunitLogger : ILogger
{
    private readonly ITestOutputHelper _output;
    private readonly string _category;

    public XunitLogger(ITestOutputHelper output, string category)
    {
        _output = output;
        _category = category;
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull
        => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var line = $"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel,-11} {_category}[{eventId.Name}] {formatter(state, exception)}";
        if (exception is not null)
        {
            line += Environment.NewLine + exception;
        }

        try
        {
            _output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // The test has finished; late log entries from background loops have nowhere to go.
        }
    }
}
