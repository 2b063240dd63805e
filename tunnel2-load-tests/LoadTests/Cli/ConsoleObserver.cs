using System.Globalization;
using Spectre.Console;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Reporting;
using Tunnel2.LoadTests.Run;

namespace Tunnel2.LoadTests.Cli;

/// <summary>How much the console shows every second.</summary>
internal enum LiveDetail
{
    /// <summary>One line per scenario and one for the mix.</summary>
    Scenarios,

    /// <summary>One line for the mix.</summary>
    Mix,

    /// <summary>Only phases and window summaries.</summary>
    Off,
}

/// <summary>
/// Per-second live lines through Spectre.Console: coloured on a terminal, plain when stdout is redirected
/// (Spectre detects it). Lines, not a live-redrawn table, so the output of a CI log or a `tee` stays readable.
/// </summary>
internal sealed class ConsoleObserver : IRunObserver
{
    private readonly IAnsiConsole _console;
    private readonly LiveDetail _detail;
    private readonly Lock _gate = new();

    public ConsoleObserver(IAnsiConsole console, LiveDetail detail)
    {
        _console = console;
        _detail = detail;
    }

    public void Phase(string text)
    {
        lock (_gate)
        {
            _console.MarkupLine($"[bold blue]»[/] [bold]{Markup.Escape(text)}[/]");
        }
    }

    public void Tick(IReadOnlyList<SecondSample> samples)
    {
        if (_detail == LiveDetail.Off)
        {
            return;
        }

        lock (_gate)
        {
            foreach (var sample in samples.Where(s => _detail == LiveDetail.Scenarios || s.Scenario == SecondSample.AllScenarios))
            {
                var mix = sample.Scenario == SecondSample.AllScenarios;
                var failColour = sample.Failed > 0 ? "red" : "grey";
                _console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                    $"  [grey]{sample.WindowTimeSec,5:0.0}s[/] {Markup.Escape(sample.Target),-15} s{sample.Stage,-2} {(mix ? "[bold]" : "")}{Markup.Escape(mix ? "all" : sample.Scenario),-10}{(mix ? "[/]" : "")} " +
                    $"rps {sample.Rps,7:0.#} │ ok {sample.Ok,6} [{failColour}]fail {sample.Failed,4}[/] │ p50 {Format.Ms(sample.P50Ms),7} p99 {Format.Ms(sample.P99Ms),7} ms │ in-flight {sample.InFlight,5} │ lag p99 {Format.Ms(sample.LagP99Ms)} ms"));
            }
        }
    }

    public void WindowCompleted(WindowResult window)
    {
        ArgumentNullException.ThrowIfNull(window);
        var total = window.Total;
        var ok = total.Failed == 0 && window.Flags.Count == 0;
        lock (_gate)
        {
            _console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"  {(ok ? "[green]✓[/]" : "[yellow]![/]")} stage {window.Stage} {Markup.Escape(window.Simulation)} {Markup.Escape(window.Target)}: " +
                $"{total.Requests} req, {total.Ok} ok, {total.Failed} failed{(total.Failed > 0 ? " (" + Markup.Escape(Format.Failures(total.Failures)) + ")" : "")}, " +
                $"achieved {Format.Rate(window.AchievedRps)}/s, mean {Format.Ms(total.Latency.MeanMs)} p50 {Format.Ms(total.Latency.P50Ms)} p99 {Format.Ms(total.Latency.P99Ms)} max {Format.Ms(total.Latency.MaxMs)} ms, lag p99 {Format.Ms(total.Lag.P99Ms)} ms"));
            foreach (var flag in window.Flags)
            {
                _console.MarkupLine($"    [yellow]{Markup.Escape(flag)}[/]");
            }
        }
    }

    public void Note(string text)
    {
        lock (_gate)
        {
            _console.MarkupLine($"[yellow]![/] {Markup.Escape(text)}");
        }
    }
}
