using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Why Kestrel ended each connection, as its own metrics say (<c>kestrel.connection.duration</c>, tag
/// <c>error.type</c>): the server-side evidence of a defence firing, which the client cannot always see (a connection
/// aborted with a TCP reset loses the GOAWAY that preceded it). Every Kestrel in the process reports to the same meter
/// name, so ends are kept per listening port.
/// </summary>
internal sealed class KestrelConnectionEnds : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<(int Port, string Protocol, string? Error)> _ends = new();

    public KestrelConnectionEnds()
    {
        _listener.InstrumentPublished = static (instrument, listener) =>
        {
            if (instrument.Meter.Name == "Microsoft.AspNetCore.Server.Kestrel" && instrument.Name == "kestrel.connection.duration")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((_, _, tags, _) =>
        {
            int? port = null;
            string? error = null;
            var protocol = string.Empty;
            foreach (var tag in tags)
            {
                switch (tag.Key)
                {
                    case "server.port":
                        port = Convert.ToInt32(tag.Value, System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case "error.type":
                        error = tag.Value?.ToString();
                        break;
                    case "network.protocol.version":
                        protocol = tag.Value?.ToString() ?? string.Empty;
                        break;
                }
            }

            if (port is { } p)
            {
                _ends.Enqueue((p, protocol, error));
            }
        });
        _listener.Start();
    }

    /// <summary>The connections on <paramref name="port"/> that have ended, with their HTTP version and error type (null: a normal end).</summary>
    public IReadOnlyList<(string Protocol, string? Error)> On(int port) => [.. _ends.Where(e => e.Port == port).Select(e => (e.Protocol, e.Error))];

    public void Dispose() => _listener.Dispose();
}
