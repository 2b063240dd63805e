namespace Tunnel2.FunctionalTests.Infrastructure;

/// <summary>
/// The sockets this process has open: entries of /proc/self/fd that link to "socket:[inode]". Backend, server, client
/// and the test's own connections share the process, so one count covers both ends of every loopback connection.
/// </summary>
internal static class OpenSockets
{
    public static int Count() => Describe().Count;

    /// <summary>The inode names ("socket:[123]") of the open sockets.</summary>
    public static List<string> Describe()
    {
        var sockets = new List<string>();
        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(entry).LinkTarget is { } target && target.StartsWith("socket:", StringComparison.Ordinal))
                {
                    sockets.Add(target);
                }
            }
            catch (IOException)
            {
                // Closed while we looked.
            }
        }

        return sockets;
    }

    /// <summary>
    /// Raises this process's open-file limit to at least <paramref name="wanted"/> with util-linux's prlimit: the soft
    /// limit up to the hard one for anyone, the hard one too where the user may (root, CAP_SYS_RESOURCE). Returns the
    /// soft limit afterwards, which may still be lower than wanted.
    /// </summary>
    public static long? RaiseFileDescriptorLimit(long wanted)
    {
        if (FileDescriptorLimit() is { } current && current >= wanted)
        {
            return current;
        }

        try
        {
            var arguments = $"--pid {Environment.ProcessId} --nofile={wanted}:{wanted}";
            using var prlimit = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("prlimit", arguments)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            });
            if (prlimit is not null && !prlimit.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                prlimit.Kill();
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No prlimit: the limit stays as it is.
        }

        return FileDescriptorLimit();
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
