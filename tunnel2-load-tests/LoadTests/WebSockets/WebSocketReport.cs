using System.Globalization;
using System.Text;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.Reporting;

namespace Tunnel2.LoadTests.WebSockets;

/// <summary>The Markdown section of one or more WebSocket runs: one column per run, so direct and tunnel sit side by side.</summary>
internal static class WebSocketReport
{
    /// <param name="heading">Heading line without the hashes, or null for none.</param>
    /// <param name="level">Heading level (number of '#').</param>
    public static string ToMarkdown(IReadOnlyList<WebSocketLoadResult> runs, string? heading = "WebSockets", int level = 3)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var md = new StringBuilder();
        if (heading is not null)
        {
            md.Append('#', level).Append(' ').AppendLine(heading).AppendLine();
        }

        if (runs.Count == 0)
        {
            return md.AppendLine("No run.").ToString();
        }

        var first = runs[0];
        md.AppendLine(Invariant($"{Format.Count(first.Sockets)} WebSockets per run, each sending one {first.MessageSize}-byte binary message every {Format.Number(1000 / first.MessagesPerSecond, "0.#")} ms (random phase per socket, open loop) for {Duration.Format(TimeSpan.FromSeconds(first.DurationSec))} after all have connected; latency from each message's intended send time to its echo (coordinated-omission corrected), HdrHistogram in µs."));
        md.AppendLine();

        md.Append("| |");
        foreach (var run in runs)
        {
            md.Append(' ').Append(Cell(run.Label)).Append(" |");
        }

        md.AppendLine().Append("|---|");
        foreach (var _ in runs)
        {
            md.Append("---|");
        }

        md.AppendLine();
        Row(md, runs, "Sockets connected", run => Invariant($"{Format.Count(run.Connected)} / {Format.Count(run.Sockets)}"));
        Row(md, runs, "Connect failures", run => Format.Failures(run.ConnectFailures));
        Row(md, runs, "Connect time p50 / p90 / p99 / max (ms)", run => Percentiles(run.ConnectTime));
        Row(md, runs, "Connect phase (all sockets)", run => Invariant($"{Format.Number(run.ConnectPhaseSec, "0.0#")} s"));
        Row(md, runs, "Messages sent / echoed / lost", run => Invariant($"{Format.Count(run.MessagesSent)} / {Format.Count(run.MessagesEchoed)} / {Format.Count(run.MessagesLost)}"));
        Row(md, runs, "Echo latency p50 / p90 / p99 / max (ms)", run => Percentiles(run.Latency));
        Row(md, runs, "Echo latency mean (ms)", run => Format.Ms(run.Latency.MeanMs));
        Row(md, runs, "Service time p50 / p99 (ms), from the actual send", run => Invariant($"{Format.Ms(run.ServiceTime.P50Ms)} / {Format.Ms(run.ServiceTime.P99Ms)}"));
        Row(md, runs, "Send lag p99 / max (ms)", run => Invariant($"{Format.Ms(run.SendLag.P99Ms)} / {Format.Ms(run.SendLag.MaxMs)}"));
        Row(md, runs, "Sockets dropped during the run", run => Format.Failures(run.Drops));
        Row(md, runs, "Message failures", run => Format.Failures(run.MessageFailures));
        Row(md, runs, "Closed cleanly at the end", run => Invariant($"{Format.Count(run.ClosedCleanly)}{(run.CloseFailures.Count > 0 ? " (" + Format.Failures(run.CloseFailures) + ")" : "")}"));
        Row(md, runs, "Verdict", run => run.Passed ? "no failure" : "**failures**");

        var notes = runs.SelectMany(run => run.Notes.Select(note => $"{run.Label}: {note}")).ToList();
        if (notes.Count > 0)
        {
            md.AppendLine();
            foreach (var note in notes)
            {
                md.Append("* ").AppendLine(Cell(note));
            }
        }

        return md.ToString();
    }

    /// <summary>"0.41 / 0.62 / 1.3 / 12.5", or "—" without samples.</summary>
    public static string Percentiles(LatencySummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        return summary.Count == 0
            ? "—"
            : Invariant($"{Format.Ms(summary.P50Ms)} / {Format.Ms(summary.P90Ms)} / {Format.Ms(summary.P99Ms)} / {Format.Ms(summary.MaxMs)}");
    }

    private static void Row(StringBuilder md, IReadOnlyList<WebSocketLoadResult> runs, string name, Func<WebSocketLoadResult, string> value)
    {
        md.Append("| ").Append(name).Append(" |");
        foreach (var run in runs)
        {
            md.Append(' ').Append(Cell(value(run))).Append(" |");
        }

        md.AppendLine();
    }

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).ReplaceLineEndings(" ");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
