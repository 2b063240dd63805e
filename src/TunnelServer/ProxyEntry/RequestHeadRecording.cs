using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Tunnel2.Server.Hosting;
using Tunnel2.Server.Uplink;

namespace Tunnel2.Server.ProxyEntry;

/// <summary>
/// Kestrel connection middleware that puts a <see cref="RequestHeadRecorder"/> under the HTTP parser of every public
/// endpoint (not the dedicated uplink listener, which serves no entry) and offers it to requests as a connection
/// feature (docs/adr/0013-connection-field-as-sent.md).
/// </summary>
internal sealed class RequestHeadRecording
{
    private readonly UplinkPreAuth _preAuth;
    private readonly int _maxHeadSize;

    public RequestHeadRecording(UplinkPreAuth preAuth, IOptions<KestrelServerOptions> kestrel)
    {
        _preAuth = preAuth;
        var limits = kestrel.Value.Limits;

        // Kestrel refuses longer heads (414/431); a line end per line is counted in neither limit.
        _maxHeadSize = checked(limits.MaxRequestLineSize + limits.MaxRequestHeadersTotalSize + (2 * limits.MaxRequestHeaderCount) + 4);
    }

    /// <summary>Puts the recorder on <paramref name="listen"/>; called for every endpoint, inside the uplink's budget.</summary>
    public void Attach(ListenOptions listen) => listen.Use(next => _preAuth.IsDedicated(listen) ? next : context => next(new RecordingConnection(context, _maxHeadSize)));

    /// <summary>
    /// A request reached the entry: its head is taken from the recorder, and the recorder is told what follows the head
    /// on the connection. Called for every request the entry sees, before anything reads the body.
    /// </summary>
    public static void EndHead(HttpContext context)
    {
        if (context.Features.Get<RequestHeadRecorder>() is not { IsRecording: true } recorder)
        {
            // HTTP/2 (every stream comes here) or an upgraded connection: no head to take, no header to look at.
            return;
        }

        var request = context.Request;
        var headers = request.Headers;
        var connection = headers.Connection;
        var bodyLength = headers.TransferEncoding.Count != 0 ? -1 : request.ContentLength ?? 0;
        var upgrade = headers.Upgrade.Count != 0 && context.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true };
        recorder.EndHead(needConnectionField: connection.Count == 1 && IsKeptToken(connection[0]), bodyLength, upgrade);
    }

    /// <summary>
    /// The request's <c>Connection</c> field as the client sent it: Kestrel's value, unless Kestrel cut it down to the
    /// one token it acts on and the recorder has the head; null when the request has none.
    /// </summary>
    public static string? ConnectionField(HttpContext context)
    {
        var connection = context.Request.Headers.Connection;
        if (connection.Count == 0)
        {
            return null;
        }

        if (connection.Count == 1 && IsKeptToken(connection[0])
            && context.Features.Get<RequestHeadRecorder>() is { } recorder && recorder.TryGetConnectionField(out var sent))
        {
            return sent;
        }

        return connection.ToString();
    }

    /// <summary>The tokens Kestrel keeps alone when a <c>Connection</c> value holds one of them with other names.</summary>
    private static bool IsKeptToken(string? value)
        => string.Equals(value, "keep-alive", StringComparison.OrdinalIgnoreCase)
            || string.Equals(value, "close", StringComparison.OrdinalIgnoreCase)
            || string.Equals(value, "Upgrade", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The connection as the layers inside see it: its transport is read through a recorder, and when TLS replaces the
    /// transport with its plaintext, a new recorder reads the plaintext (the one under TLS stops at the first record).
    /// </summary>
    private sealed class RecordingConnection : DelegatingConnectionContext
    {
        private readonly int _maxHeadSize;
        private IDuplexPipe _transport;

        public RecordingConnection(ConnectionContext inner, int maxHeadSize)
            : base(inner)
        {
            _maxHeadSize = maxHeadSize;
            _transport = Wrap(inner.Transport);
        }

        public override IDuplexPipe Transport
        {
            get => _transport;
            set
            {
                if (value is RequestHeadRecorder recorder)
                {
                    // A layer putting back the transport it was given (HttpsConnectionMiddleware does on its way out).
                    Inner.Transport = recorder.InnerTransport;
                    _transport = value;
                    return;
                }

                // The layers outside this one (the uplink's budget) follow the plaintext first, then this one reads it.
                Inner.Transport = value;
                _transport = Wrap(Inner.Transport);
            }
        }

        private RequestHeadRecorder Wrap(IDuplexPipe transport)
        {
            var recorder = new RequestHeadRecorder(transport, _maxHeadSize);
            Features.Set(recorder);
            return recorder;
        }
    }
}
