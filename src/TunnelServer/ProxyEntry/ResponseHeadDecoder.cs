using System.Buffers.Text;
using System.Text;
using Microsoft.Net.Http.Headers;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Server.ProxyEntry;

/// <summary>Applies a response head from the uplink to the public response.</summary>
internal struct ResponseHeadDecoder : IHeaderBlockHandler
{
    private readonly HttpResponse _response;

    public ResponseHeadDecoder(HttpResponse response)
    {
        _response = response;
        StatusCode = 0;
        Error = null;
        BackendMicroseconds = -1;
    }

    public int StatusCode { get; private set; }

    public string? Error { get; private set; }

    /// <summary>The backend's answer time the client reported, in microseconds, or -1.</summary>
    public long BackendMicroseconds { get; private set; }

    public void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
        => Error = "A request head arrived where a response head was expected.";

    public void OnResponseHead(int statusCode)
    {
        if (statusCode < 200 && statusCode != StatusCodes.Status101SwitchingProtocols)
        {
            Error = "Interim (1xx) responses are not forwarded as final responses.";
            return;
        }

        StatusCode = statusCode;
        _response.StatusCode = statusCode;
    }

    public void OnTrailersHead() => Error = "Trailers arrived where a response head was expected.";

    public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        var nameString = staticIndex != 0 ? StaticTable.GetName(staticIndex)! : Encoding.Latin1.GetString(name);
        if (HopByHopHeaders.IsHopByHop(nameString))
        {
            // A 101 keeps its Upgrade; Kestrel adds Connection: Upgrade itself.
            if (StatusCode == StatusCodes.Status101SwitchingProtocols && string.Equals(nameString, "Upgrade", StringComparison.OrdinalIgnoreCase))
            {
                _response.Headers.Upgrade = Encoding.Latin1.GetString(value);
            }

            return;
        }

        if (string.Equals(nameString, Tunnel2.Protocol.UplinkHandshake.BackendTimeField, StringComparison.OrdinalIgnoreCase))
        {
            BackendMicroseconds = Utf8Parser.TryParse(value, out long microseconds, out _) ? microseconds : -1;
            return;
        }

        if (string.Equals(nameString, HeaderNames.ContentLength, StringComparison.OrdinalIgnoreCase))
        {
            if (!Utf8Parser.TryParse(value, out long length, out var consumed) || consumed != value.Length || length < 0)
            {
                Error = "The response Content-Length is not a number.";
                return;
            }

            if (_response.ContentLength is { } earlier && earlier != length)
            {
                Error = "The response has conflicting Content-Length values.";
                return;
            }

            _response.ContentLength = length;
            return;
        }

        _response.Headers.Append(nameString, HeaderValueCache.GetString(staticIndex, value));
    }
}
