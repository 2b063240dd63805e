namespace Tunnel2.LoadTests.Tests.Infrastructure;

/// <summary>
/// Tests that measure the whole test process (its allocation counters) run alone, after the parallel ones:
/// other tests allocating at the same time would be counted as theirs.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "Serial: measures the whole process";
}
