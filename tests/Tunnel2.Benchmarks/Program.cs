using BenchmarkDotNet.Running;

namespace Tunnel2.Benchmarks;

/// <summary>
/// Entry point: every benchmark class in this assembly, chosen with BenchmarkDotNet's command line
/// (<c>--filter '*Frame*'</c>, <c>--job short</c>, <c>--list flat</c>); see README.md.
/// </summary>
public static class Program
{
    /// <returns>0 when every selected benchmark ran; 1 when one failed or the run was invalid (BenchmarkDotNet samples).</returns>
    public static int Main(string[] args)
    {
#if DEBUG
        Console.Error.WriteLine(
            "warning: Tunnel2.Benchmarks was built in Debug; numbers are meaningless. Use: dotnet run -c Release --project tests/Tunnel2.Benchmarks -- --filter '*'");
#endif

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        var failed = false;
        foreach (var summary in summaries)
        {
            if (summary.HasCriticalValidationErrors)
            {
                Console.Error.WriteLine($"error: {summary.Title}: critical validation errors.");
                failed = true;
            }

            foreach (var report in summary.Reports)
            {
                if (!report.Success)
                {
                    Console.Error.WriteLine($"error: {report.BenchmarkCase.DisplayInfo} did not run successfully.");
                    failed = true;
                }
            }
        }

        return failed ? 1 : 0;
    }
}
