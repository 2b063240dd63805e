using System.Globalization;

namespace Tunnel2.LoadTests.Engine;

/// <summary>
/// NBomber's load simulations (performance.md §3.1), one per stage. <see cref="Inject"/> and
/// <see cref="RampingInject"/> are open loop: arrivals follow the clock whatever the system under test does.
/// <see cref="KeepConstant"/> and <see cref="RampingConstant"/> are closed loop: each copy waits for its previous
/// request, so a slow system slows the arrivals (coordinated omission by construction; use them for "N connections"
/// ceilings only).
/// </summary>
internal abstract record LoadSimulation(TimeSpan During)
{
    /// <summary>True when arrivals are scheduled by the clock (Inject, RampingInject).</summary>
    public abstract bool IsOpenLoop { get; }

    /// <summary>The arrival rate per second at the end of the stage (open loop), or 0 for closed loop.</summary>
    public abstract double EndRatePerSecond { get; }

    /// <summary>The number of copies at the end of the stage (closed loop), or 0 for open loop.</summary>
    public virtual int EndCopies => 0;

    /// <summary>The share of this stage given to one scenario of a weighted mix.</summary>
    public abstract LoadSimulation Scale(double factor);

    /// <summary>A short label for reports, e.g. <c>inject 100/s</c>.</summary>
    public abstract string Describe();

    protected static string FormatRate(double perSecond) => perSecond.ToString("0.##", CultureInfo.InvariantCulture);
}

/// <summary><paramref name="Rate"/> arrivals per <paramref name="Interval"/> for <paramref name="During"/>.</summary>
internal sealed record Inject(double Rate, TimeSpan Interval, TimeSpan During) : LoadSimulation(During)
{
    public override bool IsOpenLoop => true;

    public override double EndRatePerSecond => Rate / Interval.TotalSeconds;

    public override LoadSimulation Scale(double factor) => this with { Rate = Rate * factor };

    public override string Describe() => $"inject {FormatRate(EndRatePerSecond)}/s";
}

/// <summary>
/// Arrival rate ramps linearly, interval by interval, from the previous stage's rate to <paramref name="Rate"/>
/// per <paramref name="Interval"/>, reached in the last interval (NBomber discussion #658: it does not send
/// Rate × During).
/// </summary>
internal sealed record RampingInject(double Rate, TimeSpan Interval, TimeSpan During) : LoadSimulation(During)
{
    public override bool IsOpenLoop => true;

    public override double EndRatePerSecond => Rate / Interval.TotalSeconds;

    public override LoadSimulation Scale(double factor) => this with { Rate = Rate * factor };

    public override string Describe() => $"ramping-inject → {FormatRate(EndRatePerSecond)}/s";
}

/// <summary><paramref name="Copies"/> looping copies, each sending its next request when the previous one ends.</summary>
internal sealed record KeepConstant(int Copies, TimeSpan During) : LoadSimulation(During)
{
    public override bool IsOpenLoop => false;

    public override double EndRatePerSecond => 0;

    public override int EndCopies => Copies;

    public override LoadSimulation Scale(double factor) => this with { Copies = Math.Max(1, (int)Math.Round(Copies * factor)) };

    public override string Describe() => $"keep-constant {Copies} copies";
}

/// <summary>Looping copies ramped linearly from the previous stage's count to <paramref name="Copies"/>.</summary>
internal sealed record RampingConstant(int Copies, TimeSpan During) : LoadSimulation(During)
{
    public override bool IsOpenLoop => false;

    public override double EndRatePerSecond => 0;

    public override int EndCopies => Copies;

    public override LoadSimulation Scale(double factor) => this with { Copies = Math.Max(1, (int)Math.Round(Copies * factor)) };

    public override string Describe() => $"ramping-constant → {Copies} copies";
}
