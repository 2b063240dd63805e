namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// The sockets this process has open: entries of /proc/self/fd that link to "socket:[inode]". Backend, server, client
/// and the test's own connections share the process, so one count covers both ends of every loopback connection.
/// (The same probe as StreamLimitsTests', which keeps its own private copy.)
/// </summary>
internal static class OpenSockets
{
    public static int Count()
    {
        var count = 0;
        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(entry).LinkTarget is { } target && target.StartsWith("socket:", StringComparison.Ordinal))
                {
                    count++;
                }
            }
            catch (IOException)
            {
                // Closed while we looked.
            }
        }

        return count;
    }

    /// <summary>The soft limit on open files of this process (/proc/self/limits), or null when it cannot be read.</summary>
    public static long? FileDescriptorLimit()
    {
        foreach (var line in File.ReadLines("/proc/self/limits"))
        {
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                var soft = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                return long.TryParse(soft, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : null;
            }
        }

        return null;
    }
}
