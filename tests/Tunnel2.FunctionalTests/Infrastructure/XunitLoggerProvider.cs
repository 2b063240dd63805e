using Microsoft.Extensions.Logging;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Infrastructure;

/// <summary>Routes every host's logs to the test output.</summary>
internal sealed class XunitLoggerProvider(ITestOutputHelper output, string prefix) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new XunitLogger(output, $"{prefix} {categoryName}");

    public void Dispose()
    {
    }
}
