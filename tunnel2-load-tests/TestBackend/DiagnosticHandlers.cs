using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace Tunnel2.TestBackend;

/// <summary>
/// Endpoints for correctness tests, where allocation does not matter: <c>info</c> (what the backend received),
/// <c>status/{code}</c> and <c>headers</c> (what the backend sends).
/// </summary>
internal sealed class DiagnosticHandlers
{
    /// <summary>Lowest status code <c>/loadtest/status/{code}</c> accepts; 1xx cannot be sent as a final response.</summary>
    public const int MinStatusCode = 200;

    /// <summary>Highest status code <c>/loadtest/status/{code}</c> accepts.</summary>
    public const int MaxStatusCode = 599;

    // Relaxed escaping keeps paths and header values readable ('+', '<', '&'); the body is served as application/json,
    // never embedded in HTML.
    private static readonly JsonWriterOptions InfoJsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    // "200 OK\n" … "599\n", built once.
    private static readonly byte[][] StatusBodies = BuildStatusBodies();

    private readonly ILogger _logger;

    public DiagnosticHandlers(ILogger logger)
    {
        _logger = logger;
    }

    /// <summary>
    /// Reads the whole request body (any method), then answers with a JSON description of the request: line, raw
    /// target, headers with repeated values kept apart, and the body's length and SHA-256.
    /// </summary>
    public async Task InfoAsync(HttpContext context)
    {
        var request = context.Request;
        var aborted = context.RequestAborted;

        long bodyLength = 0;
        string bodySha256;
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var reader = request.BodyReader;
            while (true)
            {
                var result = await reader.ReadAsync(aborted);
                foreach (var segment in result.Buffer)
                {
                    hash.AppendData(segment.Span);
                }

                bodyLength += result.Buffer.Length;
                reader.AdvanceTo(result.Buffer.End);

                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }

            bodySha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        catch (Exception ex) when (RequestParsing.IsClientAbort(ex))
        {
            Log.ClientAborted(_logger, request.Method, request.Path.Value ?? string.Empty, ex);
            return;
        }

        var output = new ArrayBufferWriter<byte>(2048);
        using (var json = new Utf8JsonWriter(output, InfoJsonOptions))
        {
            WriteInfo(json, context, bodyLength, bodySha256);
        }

        var response = context.Response;
        response.ContentType = Payloads.ApplicationJson;
        response.ContentLength = output.WrittenCount;
        await response.Body.WriteAsync(output.WrittenMemory, aborted);
    }

    /// <summary>
    /// Answers with the status code from the route, any method, without reading the request body (so it also serves
    /// as a backend that answers early, e.g. 413 during an upload). The body is "<c>code reason</c>" except for
    /// 204, 205 and 304, which have none.
    /// </summary>
    public static Task StatusAsync(HttpContext context)
    {
        if (!RequestParsing.TryGetRouteInt64(context, "code", MaxStatusCode, out var code) || code < MinStatusCode)
        {
            return RequestParsing.WriteBadRequestAsync(context, "status code must be a whole number in [200, 599]");
        }

        var response = context.Response;
        response.StatusCode = (int)code;
        if (code is StatusCodes.Status204NoContent or StatusCodes.Status205ResetContent or StatusCodes.Status304NotModified)
        {
            return Task.CompletedTask;
        }

        var body = StatusBodies[code - MinStatusCode];
        response.ContentType = Payloads.TextPlain;
        response.ContentLength = body.Length;
        response.BodyWriter.Write(body);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Copies every query pair into a response header (repeated names become repeated values) and answers 200 with
    /// an empty body. Names must be RFC 9110 tokens, values visible ASCII, space or tab; the framing headers
    /// Content-Length and Transfer-Encoding are refused because the backend owns the framing.
    /// </summary>
    public static Task HeadersAsync(HttpContext context)
    {
        var response = context.Response;
        foreach (var (name, values) in context.Request.Query)
        {
            if (!IsToken(name))
            {
                return RequestParsing.WriteBadRequestAsync(context, "header name is not a valid token: " + name);
            }

            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)
                || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                return RequestParsing.WriteBadRequestAsync(context, "framing headers cannot be set: " + name);
            }

            foreach (var value in values)
            {
                if (value is null || !IsValidFieldValue(value))
                {
                    return RequestParsing.WriteBadRequestAsync(context, "header value has characters Kestrel will not send: " + name);
                }
            }
        }

        foreach (var (name, values) in context.Request.Query)
        {
            response.Headers.Append(name, values);
        }

        response.ContentLength = 0;
        return Task.CompletedTask;
    }

    private static void WriteInfo(Utf8JsonWriter json, HttpContext context, long bodyLength, string bodySha256)
    {
        var request = context.Request;
        var connection = context.Connection;

        json.WriteStartObject();
        json.WriteString("method", request.Method);
        json.WriteString("path", request.Path.Value);
        json.WriteString("pathBase", request.PathBase.Value);
        json.WriteString("rawTarget", context.Features.Get<IHttpRequestFeature>()?.RawTarget);
        json.WriteString("queryString", request.QueryString.Value);
        json.WriteString("protocol", request.Protocol);
        json.WriteString("scheme", request.Scheme);
        json.WriteString("host", request.Host.Value);
        json.WriteString("remoteIpAddress", connection.RemoteIpAddress?.ToString());
        json.WriteNumber("remotePort", connection.RemotePort);
        json.WriteString("localIpAddress", connection.LocalIpAddress?.ToString());
        json.WriteNumber("localPort", connection.LocalPort);
        json.WriteString("connectionId", connection.Id);

        if (request.ContentLength is { } contentLength)
        {
            json.WriteNumber("contentLength", contentLength);
        }
        else
        {
            json.WriteNull("contentLength");
        }

        json.WriteString("contentType", request.ContentType);

        json.WriteStartObject("query");
        foreach (var (name, values) in request.Query)
        {
            WriteValues(json, name, values);
        }

        json.WriteEndObject();

        json.WriteStartObject("headers");
        foreach (var (name, values) in request.Headers)
        {
            WriteValues(json, name, values);
        }

        json.WriteEndObject();

        json.WriteNumber("bodyLength", bodyLength);
        json.WriteString("bodySha256", bodySha256);
        json.WriteEndObject();
    }

    private static void WriteValues(Utf8JsonWriter json, string name, StringValues values)
    {
        json.WriteStartArray(name);
        foreach (var value in values)
        {
            json.WriteStringValue(value);
        }

        json.WriteEndArray();
    }

    private static byte[][] BuildStatusBodies()
    {
        var bodies = new byte[MaxStatusCode - MinStatusCode + 1][];
        for (var code = MinStatusCode; code <= MaxStatusCode; code++)
        {
            var reason = ReasonPhrases.GetReasonPhrase(code);
            var text = reason.Length == 0 ? $"{code}\n" : $"{code} {reason}\n";
            bodies[code - MinStatusCode] = Encoding.ASCII.GetBytes(text);
        }

        return bodies;
    }

    // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    // (RFC 9110 §5.6.2).
    private static bool IsToken(string name)
    {
        if (name.Length == 0)
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && "!#$%&'*+-.^_`|~".IndexOf(c) < 0)
            {
                return false;
            }
        }

        return true;
    }

    // Kestrel's default response header encoding accepts visible ASCII, space and tab only.
    private static bool IsValidFieldValue(string value)
    {
        foreach (var c in value)
        {
            if (c != '\t' && (c < 0x20 || c > 0x7E))
            {
                return false;
            }
        }

        return true;
    }
}
