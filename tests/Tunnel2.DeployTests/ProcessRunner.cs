using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Tunnel2.DeployTests;

/// <summary>What a finished command printed.</summary>
internal sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>The last lines of stderr (or stdout), for a skip reason or a failure message.</summary>
    public string Tail(int lines = 5)
    {
        var text = Stderr.Trim().Length > 0 ? Stderr : Stdout;
        return string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(lines));
    }
}

/// <summary>Runs a command with a time limit; a command that overruns is killed (with its children).</summary>
internal static class ProcessRunner
{
    /// <returns>The result, or null when <paramref name="fileName"/> is not on PATH.</returns>
    public static async Task<ProcessResult?> RunAsync(
        string fileName, IEnumerable<string> arguments, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = new Process { StartInfo = start };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        try
        {
            process.Start();
        }
        catch (Win32Exception)
        {
            return null;
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            lock (stderr)
            {
                stderr.AppendLine($"(killed after {timeout.TotalSeconds:0} s)");
            }

            return new ProcessResult(-1, stdout.ToString(), stderr.ToString());
        }

        // WaitForExitAsync returns after the redirected streams reached EOF.
        return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString());
    }
}
