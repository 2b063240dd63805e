namespace Tunnel2.LoadTests.Docker;

/// <summary>
/// What <c>docker stats</c> shows, computed from one Engine API stats record (the same formulas as the docker CLI's
/// <c>calculateCPUPercentUnix</c> and <c>calculateMemUsageUnixNoCache</c>).
/// </summary>
internal static class ContainerStatsMath
{
    /// <summary>
    /// CPU use between the previous and this record as % of ONE core (200 = both cores of a 2-vCPU machine), as the
    /// harness's /proc sampler reports it; null when there is no previous record (the first of a stream, or the
    /// first after the container restarted and its counters began again).
    /// </summary>
    /// <param name="totalUsage">The container's cumulative CPU time (ns) now, and <paramref name="previousTotalUsage"/> one record earlier.</param>
    /// <param name="systemUsage">The host's cumulative CPU time of all cores (ns) now, and <paramref name="previousSystemUsage"/> one record earlier.</param>
    /// <param name="onlineCpus">Cores online; 0 when the daemon did not say (then <paramref name="perCpuCount"/> is used, as the CLI does).</param>
    public static double? CpuPercent(ulong totalUsage, ulong previousTotalUsage, ulong systemUsage, ulong previousSystemUsage, uint onlineCpus, int perCpuCount)
    {
        if (previousSystemUsage == 0 || systemUsage <= previousSystemUsage || totalUsage < previousTotalUsage)
        {
            return null;
        }

        var cpus = onlineCpus > 0 ? onlineCpus : (uint)Math.Max(perCpuCount, 1);
        var containerDelta = (double)(totalUsage - previousTotalUsage);
        var systemDelta = (double)(systemUsage - previousSystemUsage);
        return containerDelta / systemDelta * cpus * 100.0;
    }

    /// <summary>
    /// Memory in use without the page cache that the kernel can drop: usage − inactive_file (cgroup v2) or
    /// usage − total_inactive_file (cgroup v1), as <c>docker stats</c> shows it.
    /// </summary>
    public static ulong MemoryBytes(ulong usage, IDictionary<string, ulong>? stats)
    {
        // cgroup v1 reports total_inactive_file (hierarchical) and inactive_file; v2 only inactive_file.
        if (stats is not null && stats.TryGetValue("total_inactive_file", out var total) && total < usage)
        {
            return usage - total;
        }

        if (stats is not null && stats.TryGetValue("inactive_file", out var inactive) && inactive < usage)
        {
            return usage - inactive;
        }

        return usage;
    }
}
