using System.Net;

namespace Tunnel2.LoadTests.Engine;

/// <summary>What one scenario sends: method, absolute URL, optional body (the same bytes every time).</summary>
internal sealed class RequestTemplate
{
    private readonly byte[]? _body;

    public RequestTemplate(HttpMethod method, Uri uri, int bodyBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentOutOfRangeException.ThrowIfNegative(bodyBytes);
        if (!uri.IsAbsoluteUri)
        {
            throw new ArgumentException("The request URL must be absolute.", nameof(uri));
        }

        Method = method;
        Uri = uri;
        _body = bodyBytes > 0 ? CreateBody(bodyBytes) : null;
    }

    public HttpMethod Method { get; }

    public Uri Uri { get; }

    public int BodyBytes => _body?.Length ?? 0;

    /// <summary>A fresh message (they are single use); the body array is shared, never copied.</summary>
    public HttpRequestMessage CreateRequest()
    {
        var request = new HttpRequestMessage(Method, Uri)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (_body is not null)
        {
            request.Content = new ByteArrayContent(_body);
            request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/octet-stream");
        }

        return request;
    }

    public override string ToString() => BodyBytes > 0 ? $"{Method} {Uri} ({BodyBytes} B)" : $"{Method} {Uri}";

    // Printable, non-repeating-at-short-range bytes: nothing on the path can shortcut an all-zero body, and echoes
    // stay readable in a packet capture.
    private static byte[] CreateBody(int length)
    {
        var body = new byte[length];
        for (var i = 0; i < body.Length; i++)
        {
            body[i] = (byte)('a' + ((i * 7) + (i / 26)) % 26);
        }

        return body;
    }
}
