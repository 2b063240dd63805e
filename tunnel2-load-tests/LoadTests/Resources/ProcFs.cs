using System.Globalization;

namespace Tunnel2.LoadTests.Resources;

/// <summary>What /proc says about a process at one instant.</summary>
/// <param name="CpuTicks">utime + stime, in clock ticks.</param>
internal readonly record struct ProcessSnapshot(long CpuTicks, long RssBytes, int Threads);

/// <summary>Reads /proc/&lt;pid&gt;/stat and /proc/&lt;pid&gt;/status (man 5 proc).</summary>
internal static class ProcFs
{
    /// <summary>
    /// USER_HZ, the unit of utime/stime. It is fixed at 100 by the kernel ABI on every architecture .NET runs on
    /// (what <c>sysconf(_SC_CLK_TCK)</c> returns), whatever the kernel's internal HZ.
    /// </summary>
    public const double ClockTicksPerSecond = 100;

    public static bool TryRead(int pid, out ProcessSnapshot snapshot)
    {
        snapshot = default;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var status = File.ReadAllText($"/proc/{pid}/status");
            var (rss, threads) = ParseStatus(status);
            snapshot = new ProcessSnapshot(ParseCpuTicks(stat), rss, threads);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>utime + stime from a stat line. The command name may hold spaces and parentheses, so fields are counted after the LAST ')'.</summary>
    public static long ParseCpuTicks(string stat)
    {
        ArgumentNullException.ThrowIfNull(stat);
        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            throw new FormatException("Not a /proc/<pid>/stat line.");
        }

        // After ") " come fields 3 (state), 4 (ppid) …; utime is field 14 and stime field 15.
        var fields = stat[(close + 2)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 13)
        {
            throw new FormatException("Truncated /proc/<pid>/stat line.");
        }

        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>VmRSS (bytes) and Threads from a status file.</summary>
    public static (long RssBytes, int Threads) ParseStatus(string status)
    {
        ArgumentNullException.ThrowIfNull(status);
        long rss = 0;
        var threads = 0;
        foreach (var line in status.Split('\n'))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                // "VmRSS:	  123456 kB"
                var parts = line["VmRSS:".Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                rss = long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
            }
            else if (line.StartsWith("Threads:", StringComparison.Ordinal))
            {
                threads = int.Parse(line["Threads:".Length..].Trim(), CultureInfo.InvariantCulture);
            }
        }

        return (rss, threads);
    }
}
