using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Hosting.Server;
using IServer = Microsoft.AspNetCore.Hosting.Server.IServer;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tunnel2.Server.Sessions;

namespace Tunnel2.Server.ScaleOut;

internal enum DirectoryStatus
{
    /// <summary>At least one other node holds uplinks of the session now.</summary>
    Live,

    /// <summary>The session is known (it had uplinks within <see cref="TunnelServerOptions.SessionRetention"/>) but no node holds it: 503.</summary>
    Idle,

    /// <summary>No record, or one older than the retention: 404, like an unknown id.</summary>
    Unknown,

    /// <summary>Redis did not answer in time: nothing can be said (503).</summary>
    Unavailable,
}

/// <summary>What the directory says about one session, as seen from this node (this node itself is never in <see cref="Nodes"/>).</summary>
internal sealed record DirectoryLookup(DirectoryStatus Status, string[] Nodes)
{
    public static readonly DirectoryLookup Unknown = new(DirectoryStatus.Unknown, []);
    public static readonly DirectoryLookup Unavailable = new(DirectoryStatus.Unavailable, []);
}

internal enum ClaimStatus
{
    Claimed,

    /// <summary>Another token owns (or owned, as a tombstone) the session id.</summary>
    Conflict,

    Unavailable,
}

/// <summary>
/// The Redis session directory (docs/adr/0007-scale-out-directory.md). One hash per session,
/// <c>{prefix}s:{first 32 hex digits of SHA-256(session id)}</c> (a Redis dump reveals no session URL):
/// <code>
///   owner           token name that owns the id (set once, HSETNX semantics; the tombstone after the last node leaves)
///   seen            unix ms of the last renewal or withdrawal (SessionRetention counts from it)
///   n:{node url}    unix ms until which that node's claim is valid (lease, renewed every RenewInterval)
/// </code>
/// The key expires <see cref="TunnelServerOptions.TombstoneRetention"/> after the last write, which keeps the owner
/// reserved as long as a single node would. Lookups are cached briefly; while Redis is unreachable every operation
/// fails fast and callers treat remote sessions as unavailable (503) while local ones keep working.
/// </summary>
internal sealed class SessionDirectory : IHostedLifecycleService, IAsyncDisposable
{
    // Claim or renew: refuses (returns the other owner) when another token owns the id, else records this node's lease,
    // refreshes the key's expiry, and drops leases of other nodes that have ended (a dead node's field goes away).
    private const string AdvertiseScript = """
        local owner = redis.call('HGET', KEYS[1], 'owner')
        if owner and owner ~= ARGV[1] then return owner end
        redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'seen', ARGV[2], ARGV[3], ARGV[4])
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        local fields = redis.call('HGETALL', KEYS[1])
        for i = 1, #fields, 2 do
          if string.sub(fields[i], 1, 2) == 'n:' and tonumber(fields[i + 1]) < tonumber(ARGV[2]) then
            redis.call('HDEL', KEYS[1], fields[i])
          end
        end
        return ARGV[1]
        """;

    // Withdraw this node's lease; "seen" records when, so the session answers 503 for the retention period after it.
    private const string WithdrawScript = """
        if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
          redis.call('HSET', KEYS[1], 'seen', ARGV[2])
        end
        return 0
        """;

    private const string OwnerField = "owner";
    private const string SeenField = "seen";
    private const string NodeFieldPrefix = "n:";

    // Misses and failures are kept only this long: long enough to spare Redis a lookup per waiting request, short
    // enough that a session registering elsewhere is found almost at once.
    private static readonly TimeSpan s_negativeCacheDuration = TimeSpan.FromMilliseconds(250);
    private const int MaxCacheEntries = 100_000;

    private readonly TunnelServerOptions _options;
    private readonly TunnelDirectoryOptions _directory;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IServer _server;
    private readonly Uplink.UplinkPreAuth _preAuth;
    private readonly ConcurrentDictionary<Guid, CachedLookup> _cache = new();
    private readonly ConcurrentDictionary<string, long> _unreachableUntil = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Guid, Session> _held = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _renewNow = new(0, 1);
    private Task<ConnectionMultiplexer?>? _connecting;
    private Task? _renewLoop;
    private string? _nodeUrl;
    private volatile bool _withdrawn;
    private int _failing;
    private int _disposed;

    public SessionDirectory(IOptions<TunnelServerOptions> options, TimeProvider time, IServer server, ILogger<SessionDirectory> logger, Uplink.UplinkPreAuth preAuth)
    {
        _options = options.Value;
        _directory = _options.Directory;
        _time = time;
        _server = server;
        _logger = logger;
        _preAuth = preAuth;
    }

    public bool Enabled => _directory.Enabled;

    /// <summary>Called once per directory operation with its outcome (for metrics).</summary>
    public event Action<DirectoryLookupResult>? LookedUp;

    /// <summary>Called after every renewal round with how many leases were written and how many failed (metrics, tests).</summary>
    public event Action<int, int>? Renewed;

    /// <summary>Raised when this node's connection to Redis is back after a failure (its leases are being written again).</summary>
    public event Action? Reconnected;

    /// <summary>Raised when the directory names another owner for a session this node holds (two tokens claimed one id while Redis was away).</summary>
    public event Action<Session>? SessionConflict;

    /// <summary>
    /// The URL other nodes reach this one at: configured, or the address Kestrel bound. Known once the server listens
    /// (before that Kestrel reports the configured address, which may name port 0).
    /// </summary>
    public string NodeUrl => _nodeUrl ?? ResolveNodeUrl();

    /// <summary>Whether this node can reach Redis now.</summary>
    public bool IsConnected => _connecting is { IsCompletedSuccessfully: true, Result.IsConnected: true };

    /// <summary>Sessions this node advertises (holds uplinks of).</summary>
    public int HeldCount => _held.Count;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Connects to Redis before the node takes traffic: WebApplication starts the server after the other hosted
    /// services, so no uplink registers (and no lookup runs) before the directory can record it. Bounded by the
    /// connect timeout; with Redis down the node starts anyway, and writes its leases once Redis answers.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        _connecting = ConnectAsync();
        _renewLoop = RenewLoopAsync(_stopping.Token);
        await _connecting.WaitAsync(cancellationToken);
    }

    /// <summary>The server listens now, so the node URL is the bound address.</summary>
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        if (Enabled)
        {
            Log.DirectoryStarted(_logger, NodeUrl, IsConnected);
            if (!_held.IsEmpty)
            {
                RenewSoon();
            }
        }

        return Task.CompletedTask;
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!Enabled || Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        await WithdrawAllAsync();
        await _stopping.CancelAsync();
        if (_renewLoop is not null)
        {
            await _renewLoop.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The container disposes this twice: as the singleton and as the hosted service its factory returned.
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync();
        if (_connecting is { IsCompletedSuccessfully: true, Result: { } redis })
        {
            await redis.DisposeAsync();
        }

        _stopping.Dispose();
        _renewNow.Dispose();
    }

    /// <summary>The token name that owns <paramref name="sessionId"/> anywhere (live or tombstone), or null; <c>ok</c> false when Redis did not answer.</summary>
    public async Task<(bool Ok, string? Owner)> GetOwnerAsync(Guid sessionId)
    {
        var db = Database();
        if (db is null)
        {
            return (false, null);
        }

        try
        {
            var owner = await db.HashGetAsync(Key(sessionId), OwnerField);
            return (true, owner.IsNull ? null : (string?)owner);
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            return (false, null);
        }
    }

    /// <summary>Records that this node holds uplinks of <paramref name="session"/> (first write of its lease), unless another token owns the id.</summary>
    public async Task<ClaimStatus> ClaimAsync(Session session)
    {
        var result = await AdvertiseAsync(session.Id, session.Owner);
        if (result == ClaimStatus.Claimed || result == ClaimStatus.Unavailable)
        {
            // Unavailable: the renewal loop writes it once Redis answers again.
            _held[session.Id] = session;
        }

        return result;
    }

    /// <summary>Keeps the directory in step with this node's uplinks: a session that lost its last one is withdrawn at once.</summary>
    public void OnUplinkCountChanged(Session session)
    {
        if (!Enabled || _withdrawn)
        {
            return;
        }

        if (session.UplinkCount == 0)
        {
            if (_held.TryRemove(session.Id, out _))
            {
                _ = WithdrawAsync(session.Id);
            }
        }
        else if (_held.TryAdd(session.Id, session))
        {
            _ = AdvertiseAsync(session.Id, session.Owner);
        }
    }

    /// <summary>Drain: this node takes no new forwarded requests, so it leaves every session at once and renews nothing.</summary>
    public async Task WithdrawAllAsync()
    {
        if (!Enabled || _withdrawn)
        {
            return;
        }

        _withdrawn = true;
        var withdrawals = _held.Keys.Select(WithdrawAsync).ToArray();
        _held.Clear();
        await Task.WhenAll(withdrawals);
    }

    /// <summary>
    /// Which other nodes hold <paramref name="sessionId"/> now, minus those recently unreachable. Cached for
    /// <see cref="TunnelDirectoryOptions.LookupCacheDuration"/> (misses and failures for 250 ms).
    /// </summary>
    public async ValueTask<DirectoryLookup> LookupAsync(Guid sessionId)
    {
        var now = _time.GetTimestamp();
        if (_cache.TryGetValue(sessionId, out var cached) && cached.Expires > now)
        {
            LookedUp?.Invoke(DirectoryLookupResult.Cached);
            return Filter(cached.Lookup);
        }

        var lookup = await QueryAsync(sessionId);
        LookedUp?.Invoke(lookup.Status switch
        {
            DirectoryStatus.Live => DirectoryLookupResult.Hit,
            DirectoryStatus.Unavailable => DirectoryLookupResult.Error,
            _ => DirectoryLookupResult.Miss,
        });

        if (_cache.Count >= MaxCacheEntries)
        {
            _cache.Clear();
        }

        var duration = lookup.Status == DirectoryStatus.Live ? _directory.LookupCacheDuration : s_negativeCacheDuration;
        _cache[sessionId] = new CachedLookup(lookup, now + (long)(duration.TotalSeconds * _time.TimestampFrequency));
        return Filter(lookup);
    }

    /// <summary>Forgets the cached lookup of <paramref name="sessionId"/> (a forward there failed or was refused).</summary>
    public void Invalidate(Guid sessionId) => _cache.TryRemove(sessionId, out _);

    /// <summary>Skips <paramref name="node"/> for <see cref="TunnelDirectoryOptions.UnreachableNodeBackoff"/>: its leases may outlive it.</summary>
    public void MarkUnreachable(string node)
        => _unreachableUntil[node] = _time.GetTimestamp() + (long)(_directory.UnreachableNodeBackoff.TotalSeconds * _time.TimestampFrequency);

    /// <summary>Renews every held session now instead of at the next interval (tests, and Redis coming back).</summary>
    public void RenewSoon()
    {
        try
        {
            _renewNow.Release();
        }
        catch (SemaphoreFullException)
        {
        }
    }

    private DirectoryLookup Filter(DirectoryLookup lookup)
    {
        if (lookup.Nodes.Length == 0 || _unreachableUntil.IsEmpty)
        {
            return lookup;
        }

        var now = _time.GetTimestamp();
        var nodes = lookup.Nodes.Where(n => !_unreachableUntil.TryGetValue(n, out var until) || until <= now).ToArray();
        return nodes.Length == lookup.Nodes.Length ? lookup
            : new DirectoryLookup(nodes.Length > 0 ? DirectoryStatus.Live : DirectoryStatus.Idle, nodes);
    }

    private async Task<DirectoryLookup> QueryAsync(Guid sessionId)
    {
        var db = Database();
        if (db is null)
        {
            return DirectoryLookup.Unavailable;
        }

        HashEntry[] entries;
        try
        {
            entries = await db.HashGetAllAsync(Key(sessionId));
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            return DirectoryLookup.Unavailable;
        }

        if (entries.Length == 0)
        {
            return DirectoryLookup.Unknown;
        }

        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var self = NodeUrl;
        List<string>? nodes = null;
        long seen = 0;
        foreach (var entry in entries)
        {
            var name = (string)entry.Name!;
            if (name == SeenField)
            {
                _ = entry.Value.TryParse(out seen);
            }
            else if (name.StartsWith(NodeFieldPrefix, StringComparison.Ordinal)
                && entry.Value.TryParse(out long expires) && expires > nowMs)
            {
                var node = name[NodeFieldPrefix.Length..];
                if (node != self)
                {
                    (nodes ??= []).Add(node);
                }
            }
        }

        if (nodes is not null)
        {
            // Spread the forwarded load over the holders: a random first choice per lookup (and per cache period).
            var array = nodes.ToArray();
            Random.Shared.Shuffle(array);
            return new DirectoryLookup(DirectoryStatus.Live, array);
        }

        return nowMs - seen < _options.SessionRetention.TotalMilliseconds
            ? new DirectoryLookup(DirectoryStatus.Idle, [])
            : DirectoryLookup.Unknown;
    }

    private async Task<ClaimStatus> AdvertiseAsync(Guid sessionId, string owner)
    {
        var db = Database();
        if (db is null || _withdrawn)
        {
            return ClaimStatus.Unavailable;
        }

        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        try
        {
            var result = await db.ScriptEvaluateAsync(
                AdvertiseScript,
                [Key(sessionId)],
                [
                    owner,
                    nowMs,
                    NodeFieldPrefix + NodeUrl,
                    nowMs + (long)_directory.LeaseDuration.TotalMilliseconds,
                    (long)_options.TombstoneRetention.TotalMilliseconds,
                ]);
            return (string?)result == owner ? ClaimStatus.Claimed : ClaimStatus.Conflict;
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            return ClaimStatus.Unavailable;
        }
    }

    private async Task WithdrawAsync(Guid sessionId)
    {
        Invalidate(sessionId);
        var db = Database();
        if (db is null)
        {
            return;
        }

        try
        {
            await db.ScriptEvaluateAsync(WithdrawScript, [Key(sessionId)], [NodeFieldPrefix + NodeUrl, _time.GetUtcNow().ToUnixTimeMilliseconds()]);
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            // The lease ends by itself within LeaseDuration.
        }
    }

    private async Task RenewLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            using (var interval = new CancellationTokenSource(_directory.RenewInterval, _time))
            using (var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, interval.Token))
            {
                try
                {
                    await _renewNow.WaitAsync(wake.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    // The renew interval elapsed.
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }

            if (_withdrawn)
            {
                return;
            }

            await RenewAllAsync();
        }
    }

    private async Task RenewAllAsync()
    {
        var failed = 0;
        var renewals = new List<Task<ClaimStatus>>(_held.Count);
        var sessions = new List<Session>(_held.Count);
        foreach (var (id, session) in _held)
        {
            if (session.UplinkCount == 0)
            {
                if (_held.TryRemove(id, out _))
                {
                    await WithdrawAsync(id);
                }

                continue;
            }

            sessions.Add(session);
            renewals.Add(AdvertiseAsync(id, session.Owner));
        }

        for (var i = 0; i < renewals.Count; i++)
        {
            var status = await renewals[i];
            if (status == ClaimStatus.Unavailable)
            {
                failed++;
            }
            else if (status == ClaimStatus.Conflict)
            {
                // Two tokens claimed one id on two nodes while Redis was away; the directory's owner wins.
                Log.DirectoryConflict(_logger, sessions[i].RedactedId, sessions[i].Owner);
                SessionConflict?.Invoke(sessions[i]);
            }
        }

        var wasFailing = Interlocked.Exchange(ref _failing, failed > 0 ? 1 : 0) == 1;
        if (failed > 0 && !wasFailing)
        {
            Log.DirectoryRenewFailed(_logger, failed);
        }

        Renewed?.Invoke(renewals.Count - failed, failed);
    }

    private async Task<ConnectionMultiplexer?> ConnectAsync()
    {
        var configuration = ConfigurationOptions.Parse(_directory.Redis!);
        var timeout = (int)Math.Max(1, _directory.OperationTimeout.TotalMilliseconds);
        configuration.AbortOnConnectFail = false;
        configuration.ClientName ??= "tunnel2-server";
        configuration.AsyncTimeout = timeout;
        configuration.SyncTimeout = timeout;
        configuration.ConnectTimeout = Math.Max(timeout, 2000);

        // While disconnected, fail at once instead of queueing: a lookup must answer 503 fast, not hang.
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        configuration.ReconnectRetryPolicy = new LinearRetry(500);
        try
        {
            var redis = await ConnectionMultiplexer.ConnectAsync(configuration);
            redis.ConnectionFailed += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Interactive)
                {
                    Log.DirectoryUnavailable(_logger, e.FailureType.ToString());
                }
            };
            redis.ConnectionRestored += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Interactive)
                {
                    // A restarted Redis has lost every lease: write ours again now, not at the next interval.
                    Log.DirectoryRestored(_logger, _held.Count);
                    RenewSoon();
                    Reconnected?.Invoke();
                }
            };
            if (!redis.IsConnected)
            {
                Log.DirectoryUnavailable(_logger, "not connected at start");
            }

            return redis;
        }
        catch (Exception ex) when (ex is RedisException or ArgumentException)
        {
            Log.DirectoryUnavailable(_logger, ex.Message);
            return null;
        }
    }

    private IDatabase? Database()
        => _connecting is { IsCompletedSuccessfully: true, Result: { } redis } ? redis.GetDatabase() : null;

    private RedisKey Key(Guid sessionId)
    {
        Span<byte> id = stackalloc byte[16];
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        sessionId.TryWriteBytes(id);
        SHA256.HashData(id, hash);
        return _directory.KeyPrefix + "s:" + Convert.ToHexStringLower(hash[..16]);
    }

    private string ResolveNodeUrl()
    {
        if (!string.IsNullOrEmpty(_directory.NodeUrl))
        {
            return _directory.NodeUrl.TrimEnd('/');
        }

        // Not the dedicated uplink listener's address (Tunnel:UplinkListenUrl): it serves nothing but uplinks.
        var uplinkListener = _preAuth.DedicatedAddresses;
        var address = _server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault(a => !uplinkListener.Contains(a))
            ?? throw new InvalidOperationException("Tunnel:Directory:NodeUrl is empty and the server has no bound address yet.");
        var uri = new Uri(address.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal));
        if (uri.Host is "0.0.0.0" or "[::]" or "::")
        {
            throw new InvalidOperationException($"Tunnel:Directory:NodeUrl must be set: this node listens on {address}, which other nodes cannot dial.");
        }

        // Port 0 is the configured address before Kestrel bound it: never remember it (a lease under it names no node).
        var url = uri.GetLeftPart(UriPartial.Authority);
        if (uri.Port != 0)
        {
            _nodeUrl = url;
        }

        return url;
    }

    private static bool IsRedisFailure(Exception ex) => ex is RedisException or TimeoutException or ObjectDisposedException;

    private readonly record struct CachedLookup(DirectoryLookup Lookup, long Expires);
}

/// <summary>Outcome of one directory lookup, as counted on /metrics.</summary>
internal enum DirectoryLookupResult
{
    /// <summary>Redis named at least one live node.</summary>
    Hit,

    /// <summary>Redis named no live node.</summary>
    Miss,

    /// <summary>Redis did not answer in time.</summary>
    Error,

    /// <summary>Answered from this node's short cache, without Redis.</summary>
    Cached,
}
