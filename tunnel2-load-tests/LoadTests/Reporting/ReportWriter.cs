using Tunnel2.LoadTests.Run;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>Writes every report file of a run into one folder.</summary>
internal static class ReportWriter
{
    /// <summary>The default folder: <c>artifacts/load/&lt;yyyyMMdd-HHmmss&gt;-&lt;profile&gt;</c> under the repository root.</summary>
    public static string DefaultDirectory(string profile, DateTimeOffset startedUtc) =>
        Path.Combine(FindRepositoryRoot(), "artifacts", "load", $"{startedUtc:yyyyMMdd-HHmmss}-{profile}");

    /// <summary>Writes report.md, report.html, results.json, results.csv, stages.csv, resources.csv and the plots; returns the path of report.html.</summary>
    public static string Write(RunResult run, string directory)
    {
        ArgumentNullException.ThrowIfNull(run);
        Directory.CreateDirectory(directory);
        DataFiles.WriteJson(run, Path.Combine(directory, "results.json"));
        DataFiles.WriteSecondsCsv(run, Path.Combine(directory, "results.csv"));
        DataFiles.WriteStagesCsv(run, Path.Combine(directory, "stages.csv"));
        DataFiles.WriteResourcesCsv(run, Path.Combine(directory, "resources.csv"));

        IReadOnlyList<(string File, string Caption)> plots;
        try
        {
            plots = PlotRenderer.WriteAll(run, directory);
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or InvalidOperationException)
        {
            // No native Skia on this machine: the tables and data files are still complete.
            run.Notes.Add($"Plots not rendered: {e.GetType().Name}: {e.Message}");
            plots = [];
        }

        var document = ReportBuilder.Build(run, plots);
        File.WriteAllText(Path.Combine(directory, "report.md"), ReportRenderer.ToMarkdown(document));
        var html = Path.Combine(directory, "report.html");
        File.WriteAllText(html, ReportRenderer.ToHtml(document, directory));
        return html;
    }

    /// <summary>The nearest folder above the current directory holding Tunnel2.sln, else the current directory.</summary>
    public static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Tunnel2.sln")))
            {
                return dir.FullName;
            }
        }

        return Environment.CurrentDirectory;
    }
}
