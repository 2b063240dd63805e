using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Run;

/// <summary>Receives the run's progress (the live console, or nothing in tests).</summary>
internal interface IRunObserver
{
    /// <summary>A new phase starts: check, warm-up, or a window.</summary>
    void Phase(string text);

    /// <summary>One tick of the running window: one sample per scenario, then the mix ("*").</summary>
    void Tick(IReadOnlyList<SecondSample> samples);

    void WindowCompleted(WindowResult window);

    /// <summary>Something the reader must know (a skipped check, a failed warm-up …).</summary>
    void Note(string text);
}

/// <summary>An observer that ignores everything.</summary>
internal sealed class NullRunObserver : IRunObserver
{
    public static readonly NullRunObserver Instance = new();

    public void Phase(string text)
    {
    }

    public void Tick(IReadOnlyList<SecondSample> samples)
    {
    }

    public void WindowCompleted(WindowResult window)
    {
    }

    public void Note(string text)
    {
    }
}
