using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Tunnel2.Benchmarks.Infrastructure;

/// <summary>
/// MiB/s implied by the mean time of one operation: the bytes an operation moves (given per benchmark case) over
/// its mean. BenchmarkDotNet has no throughput column of its own.
/// </summary>
public sealed class ThroughputColumn : IColumn
{
    private readonly Func<BenchmarkCase, double> _bytesPerOperation;

    /// <param name="bytesPerOperation">Bytes one operation moves; per operation as BenchmarkDotNet counts it (after OperationsPerInvoke).</param>
    public ThroughputColumn(Func<BenchmarkCase, double> bytesPerOperation)
    {
        _bytesPerOperation = bytesPerOperation;
    }

    public string Id => nameof(ThroughputColumn);

    public string ColumnName => "MiB/s";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => "Payload MiB per second implied by Mean (bytes per operation / Mean)";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var statistics = summary[benchmarkCase]?.ResultStatistics;
        if (statistics is null || statistics.Mean <= 0)
        {
            return "NA";
        }

        var bytesPerSecond = _bytesPerOperation(benchmarkCase) / (statistics.Mean / 1e9);
        return (bytesPerSecond / (1024 * 1024)).ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public bool IsAvailable(Summary summary) => true;

    public override string ToString() => ColumnName;

    /// <summary>The value of the <c>[Params]</c> property <paramref name="name"/> of a case, as an int.</summary>
    public static int IntParameter(BenchmarkCase benchmarkCase, string name)
        => Convert.ToInt32(benchmarkCase.Parameters[name], System.Globalization.CultureInfo.InvariantCulture);
}
