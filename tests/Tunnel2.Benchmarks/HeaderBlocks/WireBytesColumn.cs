using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Tunnel2.Benchmarks.HeaderBlocks;

/// <summary>"Wire B": bytes the encoding under test puts on the wire for the sample request head.</summary>
public sealed class WireBytesColumn : IColumn
{
    public string Id => nameof(WireBytesColumn);

    public string ColumnName => "Wire B";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => "Bytes on the wire for the sample request head in this benchmark's encoding";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        => HeaderBlockVsJsonBenchmarks.WireBytes(benchmarkCase.Descriptor.WorkloadMethod.Name)
            .ToString(System.Globalization.CultureInfo.InvariantCulture);

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public bool IsAvailable(Summary summary) => true;

    public override string ToString() => ColumnName;
}
