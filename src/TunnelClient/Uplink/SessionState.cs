namespace Tunnel2.Client.Uplink;

/// <summary>
/// What all uplinks of this client share: the session id they serve and this process's instance id. Handshakes are
/// serialised, so when the server assigns a new id every other uplink follows it instead of getting an id of its own.
/// </summary>
internal sealed class SessionState
{
    private readonly Lock _lock = new();
    private Guid? _sessionId;

    public SessionState(Guid? requestedSessionId)
    {
        _sessionId = requestedSessionId;
    }

    /// <summary>Identifies this process to the server, which supersedes the uplinks of an older instance.</summary>
    public Guid InstanceId { get; } = Guid.NewGuid();

    public SemaphoreSlim HandshakeLock { get; } = new(1, 1);

    public Guid? SessionId
    {
        get
        {
            lock (_lock)
            {
                return _sessionId;
            }
        }
    }

    public string? PublicUrl { get; private set; }

    /// <summary>Records what the server assigned; true when it differs from the id asked for.</summary>
    public bool Update(Guid sessionId, string? publicUrl)
    {
        lock (_lock)
        {
            var changed = _sessionId != sessionId;
            _sessionId = sessionId;
            PublicUrl = publicUrl;
            return changed;
        }
    }
}
