using Prometheus;
using Tunnel2.Server.ProxyEntry;
using Tunnel2.Server.ScaleOut;
using Tunnel2.Server.Sessions;
using Tunnel2.Server.Uplink;

namespace Tunnel2.Server.Observability;

/// <summary>
/// What the server exposes on <c>/metrics</c> (Prometheus text format). Per-request counters are pre-bound per session
/// and outcome, so counting a request allocates nothing; uplink-level gauges are read from the live connections at
/// scrape time. Session labels carry the redacted id only.
/// </summary>
internal sealed class ServerMetrics
{
    private static readonly double[] s_latencyBuckets = Histogram.ExponentialBuckets(0.0001, 2, 18);
    private static readonly string[] s_outcomes = Enum.GetNames<ProxyError>().Select(ToLabel).ToArray();

    private readonly Counter _requests;
    private readonly Histogram _responseHead;
    private readonly Histogram _backend;
    private readonly Counter _uplinkConnects;
    private readonly Counter.Child[] _noSession;
    private readonly Counter.Child[] _remoteSession;
    private readonly Counter.Child[] _lookups;
    private readonly Counter.Child[] _forwards;
    private readonly Counter _forwardedIn;

    public ServerMetrics(UplinkEndpoint uplinks, SessionRegistry sessions, SessionDirectory directory, UplinkPreAuth preAuth)
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        var allocated = Metrics.WithCustomRegistry(Registry).CreateGauge("tunnel2_allocated_bytes", "Managed bytes allocated by this process since start (GC.GetTotalAllocatedBytes).");
        var gcCommitted = Metrics.WithCustomRegistry(Registry).CreateGauge("tunnel2_gc_committed_bytes", "Memory the GC has committed (GCMemoryInfo.TotalCommittedBytes at the last collection): its share of the process's RSS.");
        var gcHeap = Metrics.WithCustomRegistry(Registry).CreateGauge("tunnel2_gc_heap_bytes", "Managed heap size at the last collection, live objects and fragmentation (GCMemoryInfo.HeapSizeBytes).");
        Registry.AddBeforeCollectCallback(() =>
        {
            allocated.Set(GC.GetTotalAllocatedBytes(precise: false));
            var gc = GC.GetGCMemoryInfo();
            gcCommitted.Set(gc.TotalCommittedBytes);
            gcHeap.Set(gc.HeapSizeBytes);
        });
        var factory = Metrics.WithCustomRegistry(Registry);

        _requests = factory.CreateCounter("tunnel2_requests_total", "Public requests by session and outcome (ok, or the failure).", ["session", "outcome"]);
        _responseHead = factory.CreateHistogram(
            "tunnel2_response_head_seconds",
            "From the entry receiving a request to the response head being ready.",
            new HistogramConfiguration { Buckets = s_latencyBuckets });
        _backend = factory.CreateHistogram(
            "tunnel2_backend_seconds",
            "Time the backend took to answer, as measured and reported by the client.",
            new HistogramConfiguration { Buckets = s_latencyBuckets });
        _uplinkConnects = factory.CreateCounter("tunnel2_uplink_connects_total", "Uplinks registered (reconnects included).");
        var preAuthClosed = factory.CreateCounter(
            "tunnel2_uplink_preauth_closed_total",
            "Connections closed by the uplink's pre-authentication budget, by reason: bytes (Tunnel:UplinkPreAuth:MaxBytes), timeout (Tunnel:UplinkPreAuth:Timeout).",
            ["reason"]);
        var preAuthBytes = preAuthClosed.WithLabels("bytes");
        var preAuthTimeout = preAuthClosed.WithLabels("timeout");
        Registry.AddBeforeCollectCallback(() =>
        {
            preAuthBytes.IncTo(preAuth.ClosedForBytes);
            preAuthTimeout.IncTo(preAuth.ClosedForTimeout);
        });
        _noSession = BindSession("none");

        // Scale-out (docs/adr/0007-scale-out-directory.md). A request forwarded to the owning node is counted in
        // tunnel2_requests_total there, once; this node counts only its failures, under session "remote".
        _remoteSession = BindSession("remote");
        var lookups = factory.CreateCounter("tunnel2_directory_lookups_total", "Session directory lookups for sessions this node could not serve: hit (a live node named), miss, error (Redis did not answer), cached.", ["result"]);
        _lookups = [.. Enum.GetNames<DirectoryLookupResult>().Select(name => lookups.WithLabels(name.ToLowerInvariant()))];
        var forwards = factory.CreateCounter("tunnel2_forwarded_requests_total", "Requests this node forwarded to the node holding their session, by outcome: completed, unreachable, refused, failed.", ["outcome"]);
        _forwards = [.. Enum.GetNames<ForwardOutcome>().Select(name => forwards.WithLabels(name.ToLowerInvariant()))];
        _forwardedIn = factory.CreateCounter("tunnel2_forwarded_in_requests_total", "Requests other nodes forwarded to this node (authenticated by the node secret).");
        var renewals = factory.CreateCounter("tunnel2_directory_renewals_total", "Lease renewals of sessions this node holds, by result: ok, error (Redis unreachable).", ["result"]);
        var renewalsOk = renewals.WithLabels("ok");
        var renewalsFailed = renewals.WithLabels("error");
        var heldSessions = factory.CreateGauge("tunnel2_directory_sessions", "Sessions this node advertises in the directory.");
        directory.LookedUp += result => _lookups[(int)result].Inc();
        directory.Renewed += (ok, failed) =>
        {
            renewalsOk.Inc(ok);
            renewalsFailed.Inc(failed);
        };
        Registry.AddBeforeCollectCallback(() => heldSessions.Set(directory.HeldCount));

        var uplinkCount = factory.CreateGauge("tunnel2_uplinks", "Live uplinks per session.", ["session"]);
        var sessionCount = factory.CreateGauge("tunnel2_sessions", "Sessions known to this node (with or without uplinks).");
        var activeStreams = factory.CreateGauge("tunnel2_active_streams", "Streams open on all uplinks.");
        var bytes = factory.CreateGauge("tunnel2_uplink_bytes", "Bytes moved over the uplinks of live connections.", ["direction"]);
        var stalls = factory.CreateGauge("tunnel2_flow_control_stalls", "Times a sender on a live uplink waited for flow-control credit.");
        var frames = factory.CreateGauge("tunnel2_uplink_frames_sent", "Frames this node wrote on live uplinks.");
        var flushes = factory.CreateGauge("tunnel2_uplink_flushes", "Flushes (send calls) this node made on live uplinks; frames / flushes is the write coalescing.");

        Registry.AddBeforeCollectCallback(() =>
        {
            long streams = 0, sent = 0, received = 0, stallCount = 0, frameCount = 0, flushCount = 0;
            var perSession = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var (connection, session) in uplinks.LiveConnections)
            {
                streams += connection.ActiveStreamCount;
                sent += connection.BytesSent;
                received += connection.BytesReceived;
                stallCount += connection.FlowControlStalls;
                frameCount += connection.FramesSent;
                flushCount += connection.Flushes;
                perSession[session.RedactedId] = perSession.GetValueOrDefault(session.RedactedId) + 1;
            }

            _uplinkConnects.IncTo(uplinks.RegisteredCount);
            activeStreams.Set(streams);
            bytes.WithLabels("out").Set(sent);
            bytes.WithLabels("in").Set(received);
            stalls.Set(stallCount);
            frames.Set(frameCount);
            flushes.Set(flushCount);
            sessionCount.Set(sessions.Count);
            foreach (var labels in uplinkCount.GetAllLabelValues().ToArray())
            {
                if (!perSession.ContainsKey(labels[0]))
                {
                    uplinkCount.RemoveLabelled(labels);
                }
            }

            foreach (var (session, count) in perSession)
            {
                uplinkCount.WithLabels(session).Set(count);
            }
        });

        sessions.SessionForgotten += id => Forget(SessionIds.Redact(id));
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Counts one public request of <paramref name="session"/> (null: no session, e.g. an unknown id).</summary>
    public void CountRequest(Session? session, ProxyError outcome)
    {
        var children = session is null ? _noSession : session.RequestCounters ??= BindSession(session.RedactedId);
        children[(int)outcome].Inc();
    }

    /// <summary>Counters of one session, bound once (creating them allocates; counting does not).</summary>
    private Counter.Child[] BindSession(string session)
    {
        var children = new Counter.Child[s_outcomes.Length];
        for (var i = 0; i < children.Length; i++)
        {
            children[i] = _requests.WithLabels(session, s_outcomes[i]);
        }

        return children;
    }

    /// <summary>Counts a failed request for a session held by other nodes.</summary>
    public void CountRemoteRequest(ProxyError outcome) => _remoteSession[(int)outcome].Inc();

    public void CountForward(ForwardOutcome outcome) => _forwards[(int)outcome].Inc();

    public void CountForwardedIn() => _forwardedIn.Inc();

    public void ObserveResponseHead(TimeSpan elapsed) => _responseHead.Observe(elapsed.TotalSeconds);

    public void ObserveBackend(TimeSpan elapsed) => _backend.Observe(elapsed.TotalSeconds);

    private void Forget(string session)
    {
        foreach (var outcome in s_outcomes)
        {
            _requests.RemoveLabelled(session, outcome);
        }
    }

    /// <summary>ProxyError.None is "ok"; the others in snake_case, e.g. BackendUnavailable → backend_unavailable.</summary>
    private static string ToLabel(string name)
    {
        if (name == nameof(ProxyError.None))
        {
            return "ok";
        }

        var builder = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                builder.Append('_');
            }

            builder.Append(char.ToLowerInvariant(name[i]));
        }

        return builder.ToString();
    }
}
