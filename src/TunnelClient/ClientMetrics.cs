using Prometheus;
using Tunnel2.Protocol;

namespace Tunnel2.Client;

/// <summary>The client's Prometheus metrics, served with its status on the local status endpoint.</summary>
public sealed class ClientMetrics
{
    private static readonly double[] s_latencyBuckets = Histogram.ExponentialBuckets(0.0001, 2, 18);

    private readonly Counter.Child[] _outcomes;
    private readonly Histogram _backend;
    private readonly Counter _dials;
    private readonly Counter _dialFailures;

    public ClientMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        var allocated = Metrics.WithCustomRegistry(Registry).CreateGauge("tunnel2_allocated_bytes", "Managed bytes allocated by this process since start (GC.GetTotalAllocatedBytes).");
        Registry.AddBeforeCollectCallback(() => allocated.Set(GC.GetTotalAllocatedBytes(precise: false)));
        var factory = Metrics.WithCustomRegistry(Registry);
        var requests = factory.CreateCounter("tunnel2_client_requests_total", "Forwarded requests by outcome (ok, or the failure sent back as RESET).", ["outcome"]);
        _outcomes = [.. s_labels.Select(label => requests.WithLabels(label))];
        _backend = factory.CreateHistogram("tunnel2_client_backend_seconds", "Backend time to response head.", new HistogramConfiguration { Buckets = s_latencyBuckets });
        _dials = factory.CreateCounter("tunnel2_client_uplink_connects_total", "Uplinks established (reconnects included).");
        _dialFailures = factory.CreateCounter("tunnel2_client_uplink_dial_failures_total", "Failed attempts to establish an uplink.");
        QueueDepth = factory.CreateGauge("tunnel2_client_queue_depth", "Requests waiting for a forwarding slot (the SemaphoreSlim).");
        Admitted = factory.CreateGauge("tunnel2_client_requests_in_flight", "Requests admitted: forwarding or queued.");
        Uplinks = factory.CreateGauge("tunnel2_client_uplinks", "Uplinks connected now.");
    }

    public CollectorRegistry Registry { get; }

    public Gauge QueueDepth { get; }

    public Gauge Admitted { get; }

    public Gauge Uplinks { get; }

    public void CountOutcome(TunnelErrorCode outcome) => _outcomes[OutcomeIndex(outcome)].Inc();

    public void ObserveBackend(TimeSpan elapsed) => _backend.Observe(elapsed.TotalSeconds);

    public void CountDial(bool succeeded)
    {
        if (succeeded)
        {
            _dials.Inc();
        }
        else
        {
            _dialFailures.Inc();
        }
    }

    private static readonly string[] s_labels = ["ok", "backend_unavailable", "backend_timeout", "backend_invalid_response", "queue_full", "other"];

    private static int OutcomeIndex(TunnelErrorCode code) => code switch
    {
        TunnelErrorCode.NoError => 0,
        TunnelErrorCode.BackendUnavailable => 1,
        TunnelErrorCode.BackendTimeout => 2,
        TunnelErrorCode.BackendInvalidResponse => 3,
        TunnelErrorCode.ClientOverloaded => 4,
        _ => 5,
    };
}
