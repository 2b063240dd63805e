namespace Tunnel2.TestBackend;

/// <summary>
/// Process entry point. A namespaced class rather than top-level statements, so test projects that reference
/// several executables never see two global <c>Program</c> types.
/// </summary>
internal static class Program
{
    public static async Task Main(string[] args)
    {
        await using var app = TestBackendApp.Create(args);
        await app.RunAsync();
    }
}
