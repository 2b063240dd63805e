using System.Net;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Client.Forwarding;

/// <summary>The public request body, streamed from the tunnel stream's DATA into the backend request as it arrives.</summary>
internal sealed class TunnelRequestContent(TunnelStream stream, long? length) : HttpContent
{
    protected override async Task SerializeToStreamAsync(Stream target, TransportContext? context, CancellationToken cancellationToken)
    {
        var input = stream.Input;
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken);
            foreach (var segment in result.Buffer)
            {
                await target.WriteAsync(segment, cancellationToken);
            }

            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }

            // Pass what arrived on now: HttpClient otherwise holds a streamed body until its write buffer fills, which
            // stalls interactive and long-lived uploads (gRPC client streams, progress uploads).
            await target.FlushAsync(cancellationToken);
        }
    }

    protected override Task SerializeToStreamAsync(Stream target, TransportContext? context)
        => SerializeToStreamAsync(target, context, CancellationToken.None);

    protected override bool TryComputeLength(out long computedLength)
    {
        computedLength = length ?? 0;
        return length.HasValue;
    }
}
