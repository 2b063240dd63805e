using System.Globalization;
using System.Text.RegularExpressions;

namespace Tunnel2.LoadTests.Bench;

/// <summary>
/// Byte counts as people type them: <c>1048576</c>, <c>64KiB</c>, <c>1MiB</c>, <c>1GiB</c>, and the shorthands
/// <c>64k</c>, <c>1m</c>, <c>1g</c> (binary, as <c>head -c 1G</c> reads them). Decimal units (<c>kB</c>, <c>MB</c>,
/// <c>GB</c>) are powers of 1000.
/// </summary>
internal static partial class ByteSize
{
    public const long KiB = 1024;
    public const long MiB = 1024 * KiB;
    public const long GiB = 1024 * MiB;

    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var match = SizePattern().Match(text.Trim());
        if (!match.Success || !double.TryParse(match.Groups["n"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }

        long unit = match.Groups["u"].Value switch
        {
            "" or "B" or "b" => 1,
            "k" or "K" or "KiB" or "kiB" => KiB,
            "m" or "M" or "MiB" => MiB,
            "g" or "G" or "GiB" => GiB,
            "kB" or "KB" => 1000,
            "MB" => 1000 * 1000,
            "GB" => 1000 * 1000 * 1000,
            _ => 0,
        };
        var value = number * unit;
        if (unit == 0 || value > long.MaxValue || value != Math.Floor(value))
        {
            return false;
        }

        bytes = (long)value;
        return true;
    }

    /// <summary>The largest binary unit that divides the value: <c>64KiB</c>, <c>1GiB</c>, <c>1000B</c>.</summary>
    public static string Format(long bytes) => bytes switch
    {
        0 => "0B",
        _ when bytes % GiB == 0 => (bytes / GiB).ToString(CultureInfo.InvariantCulture) + "GiB",
        _ when bytes % MiB == 0 => (bytes / MiB).ToString(CultureInfo.InvariantCulture) + "MiB",
        _ when bytes % KiB == 0 => (bytes / KiB).ToString(CultureInfo.InvariantCulture) + "KiB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + "B",
    };

    [GeneratedRegex(@"^(?<n>\d+(?:\.\d+)?)\s*(?<u>[A-Za-z]*)$", RegexOptions.CultureInvariant)]
    private static partial Regex SizePattern();
}
