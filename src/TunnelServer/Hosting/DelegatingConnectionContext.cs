using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Tunnel2.Server.Hosting;

/// <summary>
/// A connection as a layer of Kestrel connection middleware hands it to the layers inside: everything is the
/// underlying connection's (id, features, items, lifetime, endpoints, abort) except <see cref="Transport"/>, which the
/// derived layer decorates.
/// </summary>
/// <remarks>
/// Kestrel adds endpoint-default middleware before TLS, so such a layer sits outside <c>UseHttps</c> and first sees
/// ciphertext. HttpsConnectionMiddleware replaces <see cref="Transport"/> with its plaintext pipe for the layers inside
/// it and puts the original back on its way out; a derived layer follows the replacement by decorating the plaintext.
/// </remarks>
internal abstract class DelegatingConnectionContext : ConnectionContext
{
    protected DelegatingConnectionContext(ConnectionContext inner) => Inner = inner;

    protected ConnectionContext Inner { get; }

    public override string ConnectionId
    {
        get => Inner.ConnectionId;
        set => Inner.ConnectionId = value;
    }

    public override IFeatureCollection Features => Inner.Features;

    public override IDictionary<object, object?> Items
    {
        get => Inner.Items;
        set => Inner.Items = value;
    }

    public override CancellationToken ConnectionClosed
    {
        get => Inner.ConnectionClosed;
        set => Inner.ConnectionClosed = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => Inner.LocalEndPoint;
        set => Inner.LocalEndPoint = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => Inner.RemoteEndPoint;
        set => Inner.RemoteEndPoint = value;
    }

    public override void Abort() => Inner.Abort();

    public override void Abort(ConnectionAbortedException abortReason) => Inner.Abort(abortReason);

    public override ValueTask DisposeAsync() => Inner.DisposeAsync();
}
