using System.Globalization;

namespace Tunnel2.FaultProxy;

/// <summary>
/// The text form of toxics, shared by the command line and the control commands:
/// <c>latency=100ms jitter=20ms bandwidth=64k reset-after=64k limit-data=1m slice=16 slice-delay=5ms half-open=on
/// stall=2s</c>. Durations take <c>ms</c>, <c>s</c> or <c>m</c> (a bare number is milliseconds); sizes take
/// <c>k</c>, <c>m</c> or <c>g</c> (powers of 1024). <c>off</c> turns a count toxic off.
/// </summary>
public static class ToxicSyntax
{
    /// <summary>Applies one <c>name=value</c> setting to <paramref name="toxics"/>.</summary>
    /// <exception cref="FormatException">The setting is not understood.</exception>
    public static void Apply(Toxics toxics, string setting)
    {
        ArgumentNullException.ThrowIfNull(toxics);
        ArgumentNullException.ThrowIfNull(setting);
        var separator = setting.IndexOf('=', StringComparison.Ordinal);
        if (separator <= 0)
        {
            throw new FormatException($"Expected name=value, got '{setting}'.");
        }

        var name = setting[..separator].Trim().ToLowerInvariant();
        var value = setting[(separator + 1)..].Trim();
        switch (name)
        {
            case "latency":
                toxics.Latency = ParseDuration(value);
                break;
            case "jitter":
                toxics.Jitter = ParseDuration(value);
                break;
            case "bandwidth":
                toxics.BandwidthBytesPerSecond = IsOff(value) ? 0 : ParseSize(value);
                break;
            case "reset-after":
                toxics.ResetAfterBytes = IsOff(value) ? null : ParseSize(value);
                break;
            case "limit-data":
                toxics.LimitDataBytes = IsOff(value) ? null : ParseSize(value);
                break;
            case "slice":
                toxics.SliceSize = IsOff(value) ? 0 : checked((int)ParseSize(value));
                break;
            case "slice-delay":
                toxics.SliceDelay = ParseDuration(value);
                break;
            case "half-open":
                toxics.HalfOpen = ParseSwitch(value);
                break;
            case "stall":
                if (IsOff(value))
                {
                    toxics.Resume();
                }
                else
                {
                    toxics.Stall(ParseDuration(value));
                }

                break;
            default:
                throw new FormatException($"Unknown toxic '{name}'.");
        }
    }

    /// <summary>Parses <c>250ms</c>, <c>2s</c>, <c>1.5s</c>, <c>1m</c>, or a bare number of milliseconds.</summary>
    public static TimeSpan ParseDuration(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var (number, unit) = Split(text);
        var scale = unit switch
        {
            "" or "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            _ => throw new FormatException($"Unknown duration unit in '{text}'; use ms, s or m."),
        };
        return TimeSpan.FromMilliseconds(number * scale);
    }

    /// <summary>Parses <c>1500</c>, <c>64k</c>, <c>1m</c>, <c>2g</c> (powers of 1024).</summary>
    public static long ParseSize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var (number, unit) = Split(text);
        var scale = unit switch
        {
            "" or "b" => 1L,
            "k" or "kb" or "kib" => 1024L,
            "m" or "mb" or "mib" => 1024L * 1024,
            "g" or "gb" or "gib" => 1024L * 1024 * 1024,
            _ => throw new FormatException($"Unknown size unit in '{text}'; use k, m or g."),
        };
        return checked((long)(number * scale));
    }

    private static bool ParseSwitch(string value) => value.ToLowerInvariant() switch
    {
        "on" or "true" or "1" or "yes" => true,
        "off" or "false" or "0" or "no" => false,
        _ => throw new FormatException($"Expected on or off, got '{value}'."),
    };

    private static bool IsOff(string value) => value.Equals("off", StringComparison.OrdinalIgnoreCase) || value.Equals("none", StringComparison.OrdinalIgnoreCase);

    private static (double Number, string Unit) Split(string text)
    {
        var trimmed = text.Trim().ToLowerInvariant();
        var end = 0;
        while (end < trimmed.Length && (char.IsAsciiDigit(trimmed[end]) || trimmed[end] == '.'))
        {
            end++;
        }

        if (end == 0 || !double.TryParse(trimmed.AsSpan(0, end), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
        {
            throw new FormatException($"Expected a number in '{text}'.");
        }

        return (number, trimmed[end..]);
    }
}
