using System.Globalization;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>Number formats shared by the console and the reports (invariant culture).</summary>
internal static class Format
{
    /// <summary>Milliseconds with about three significant digits: 0.412, 12.35, 412.5.</summary>
    public static string Ms(double value) => value switch
    {
        < 1 => value.ToString("0.###", CultureInfo.InvariantCulture),
        < 100 => value.ToString("0.##", CultureInfo.InvariantCulture),
        _ => value.ToString("0.#", CultureInfo.InvariantCulture),
    };

    /// <summary>A signed difference in milliseconds: +0.213, −1.2.</summary>
    public static string DeltaMs(double value) => (value >= 0 ? "+" : "−") + Ms(Math.Abs(value));

    public static string Rate(double value) => value.ToString(value < 100 ? "0.#" : "0", CultureInfo.InvariantCulture);

    public static string Count(long value) => value.ToString("#,0", CultureInfo.InvariantCulture);

    public static string Percent(double fraction) => (fraction * 100).ToString(fraction is > 0.999 and < 1 ? "0.###" : "0.##", CultureInfo.InvariantCulture) + " %";

    public static string Ratio(double value) => value.ToString("0.00", CultureInfo.InvariantCulture);

    public static string Number(double value, string format = "0.##") => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>"status 503 ×3, timeout ×1", or "—".</summary>
    public static string Failures(IReadOnlyDictionary<string, long> failures) =>
        failures.Count == 0 ? "—" : string.Join(", ", failures.Select(pair => $"{pair.Key} ×{Count(pair.Value)}"));
}
