using System.Globalization;
using System.Text;

namespace Tunnel2.FaultProxy;

/// <summary>
/// One-line commands that change a running proxy: what the console entry reads from standard input, so a script can
/// flip faults while traffic flows.
/// <code>
/// upstream latency=100ms jitter=20ms      toxics for one direction (upstream, downstream or both)
/// downstream reset-after=64k              … any setting of <see cref="ToxicSyntax"/>
/// both clear                              remove that direction's toxics
/// break reset|close|half-open             break the connections open now
/// refuse on|off                           reset new connections at once
/// clear                                   all toxics off, refuse off
/// status                                  one line per direction and per connection
/// </code>
/// </summary>
public static class ControlCommands
{
    public const string Help =
        "upstream|downstream|both <name=value>... | <direction> clear | break reset|close|half-open | refuse on|off | clear | status | quit";

    /// <summary>Runs <paramref name="line"/> against <paramref name="proxy"/> and returns the reply to print.</summary>
    /// <exception cref="FormatException">The command is not understood; nothing was changed.</exception>
    public static string Execute(FaultProxy proxy, string line)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        ArgumentNullException.ThrowIfNull(line);
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 0)
        {
            return string.Empty;
        }

        switch (words[0].ToLowerInvariant())
        {
            case "upstream":
            case "downstream":
            case "both":
                return Configure(proxy, words);
            case "break":
                if (words.Length != 2)
                {
                    throw new FormatException("Usage: break reset|close|half-open");
                }

                var mode = ParseBreakMode(words[1]);
                var count = proxy.BreakAll(mode);
                return string.Create(CultureInfo.InvariantCulture, $"broke {count} connection(s): {mode}");
            case "refuse":
                if (words.Length != 2 || words[1] is not ("on" or "off"))
                {
                    throw new FormatException("Usage: refuse on|off");
                }

                proxy.RefuseNewConnections = words[1] == "on";
                return $"refuse {words[1]}";
            case "clear":
                proxy.ClearToxics();
                return "cleared";
            case "status":
                return Status(proxy);
            case "help":
                return Help;
            default:
                throw new FormatException($"Unknown command '{words[0]}'. {Help}");
        }
    }

    /// <summary>Parses <c>reset</c>, <c>close</c> or <c>half-open</c>.</summary>
    public static BreakMode ParseBreakMode(string text) => text.ToLowerInvariant() switch
    {
        "reset" or "rst" => BreakMode.Reset,
        "close" or "fin" => BreakMode.Close,
        "half-open" or "halfopen" or "freeze" => BreakMode.HalfOpen,
        _ => throw new FormatException($"Unknown break mode '{text}'; use reset, close or half-open."),
    };

    private static string Configure(FaultProxy proxy, string[] words)
    {
        var targets = words[0].ToLowerInvariant() switch
        {
            "upstream" => new[] { proxy.Upstream },
            "downstream" => [proxy.Downstream],
            _ => [proxy.Upstream, proxy.Downstream],
        };

        if (words.Length == 2 && words[1].Equals("clear", StringComparison.OrdinalIgnoreCase))
        {
            foreach (var toxics in targets)
            {
                toxics.Clear();
            }
        }
        else if (words.Length < 2)
        {
            throw new FormatException($"Usage: {words[0]} name=value ... | {words[0]} clear");
        }
        else
        {
            // Validate everything on scratch copies first, so a typo changes nothing.
            var scratch = new Toxics("scratch", TimeProvider.System);
            foreach (var setting in words.AsSpan(1))
            {
                ToxicSyntax.Apply(scratch, setting);
            }

            foreach (var toxics in targets)
            {
                foreach (var setting in words.AsSpan(1))
                {
                    ToxicSyntax.Apply(toxics, setting);
                }
            }
        }

        return string.Join(Environment.NewLine, targets.Select(static t => t.ToString()));
    }

    private static string Status(FaultProxy proxy)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"listening {proxy.EndPoint} -> {proxy.Target}; accepted {proxy.AcceptedCount}, open {proxy.ActiveCount}{(proxy.RefuseNewConnections ? ", refusing new" : string.Empty)}");
        text.AppendLine().Append(proxy.Upstream);
        text.AppendLine().Append(proxy.Downstream);
        foreach (var connection in proxy.Connections)
        {
            text.AppendLine().Append(connection).Append(connection.BrokenBy is { } mode ? $" broken={mode}" : string.Empty);
        }

        return text.ToString();
    }
}
