namespace Tunnel2.LoadTests;

internal static class Program
{
    public static Task<int> Main(string[] args) => Cli.LoadTestsCommand.InvokeAsync(args);
}
