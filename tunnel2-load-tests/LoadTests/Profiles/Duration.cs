using System.Globalization;
using System.Text.RegularExpressions;

namespace Tunnel2.LoadTests.Profiles;

/// <summary>Durations as people write them in profiles and on the command line: <c>500ms</c>, <c>30s</c>, <c>2m</c>, <c>1m30s</c>, <c>00:00:30</c>.</summary>
internal static partial class Duration
{
    public static TimeSpan Parse(string text)
    {
        if (TryParse(text, out var value))
        {
            return value;
        }

        throw new FormatException($"'{text}' is not a duration (examples: 500ms, 30s, 2m, 1m30s, 00:00:30).");
    }

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
        }

        var match = DurationPattern().Match(text);
        if (!match.Success)
        {
            return false;
        }

        var ticks = 0.0;
        foreach (Capture part in match.Groups["part"].Captures)
        {
            var unitMatch = PartPattern().Match(part.Value);
            var number = double.Parse(unitMatch.Groups["n"].Value, CultureInfo.InvariantCulture);
            ticks += number * unitMatch.Groups["u"].Value switch
            {
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                _ => TimeSpan.TicksPerHour,
            };
        }

        value = TimeSpan.FromTicks((long)Math.Round(ticks));
        return true;
    }

    /// <summary>The shortest of the forms above, for reports: <c>30s</c>, <c>1.5s</c>, <c>250ms</c>, <c>2m</c>.</summary>
    public static string Format(TimeSpan value) => value switch
    {
        _ when value.Ticks % TimeSpan.TicksPerMinute == 0 && value >= TimeSpan.FromMinutes(1) =>
            ((long)value.TotalMinutes).ToString(CultureInfo.InvariantCulture) + "m",
        _ when value >= TimeSpan.FromSeconds(1) => value.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s",
        _ => value.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture) + "ms",
    };

    [GeneratedRegex(@"^(?<part>\d+(?:\.\d+)?(?:ms|s|m|h))+$", RegexOptions.CultureInvariant)]
    private static partial Regex DurationPattern();

    [GeneratedRegex(@"^(?<n>\d+(?:\.\d+)?)(?<u>ms|s|m|h)$", RegexOptions.CultureInvariant)]
    private static partial Regex PartPattern();
}
