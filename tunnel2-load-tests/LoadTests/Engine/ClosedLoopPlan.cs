namespace Tunnel2.LoadTests.Engine;

/// <summary>When each looping copy of a closed-loop stage is active.</summary>
internal readonly record struct CopyWindow(TimeSpan Start, TimeSpan Stop);

/// <summary>Turns KeepConstant/RampingConstant into per-copy activity windows.</summary>
internal static class ClosedLoopPlan
{
    /// <summary>
    /// KeepConstant: every copy runs the whole stage. RampingConstant: the number of active copies moves linearly
    /// from <paramref name="startCopies"/> to the target; copy k (1-based) joins at (k − start − 1)/(end − start) of
    /// the stage when ramping up, and leaves at (start − k + 1)/(start − end) when ramping down.
    /// </summary>
    public static IReadOnlyList<CopyWindow> Create(LoadSimulation simulation, int startCopies)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(startCopies);
        var during = simulation.During;
        switch (simulation)
        {
            case KeepConstant keep:
                return Enumerable.Repeat(new CopyWindow(TimeSpan.Zero, during), keep.Copies).ToArray();
            case RampingConstant ramp:
                var end = ramp.Copies;
                var copies = new CopyWindow[Math.Max(startCopies, end)];
                for (var k = 1; k <= copies.Length; k++)
                {
                    if (k <= Math.Min(startCopies, end))
                    {
                        copies[k - 1] = new CopyWindow(TimeSpan.Zero, during);
                    }
                    else if (end > startCopies)
                    {
                        copies[k - 1] = new CopyWindow(during * ((double)(k - startCopies - 1) / (end - startCopies)), during);
                    }
                    else
                    {
                        copies[k - 1] = new CopyWindow(TimeSpan.Zero, during * ((double)(startCopies - k + 1) / (startCopies - end)));
                    }
                }

                return copies;
            default:
                throw new ArgumentException($"{simulation.GetType().Name} is not a closed-loop simulation.", nameof(simulation));
        }
    }
}
