using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Tunnel2.TestBackend;

/// <summary>
/// Allocation-free parsing of the numeric route and query parameters the endpoints take, and the one place that
/// writes a 400 response.
/// </summary>
internal static class RequestParsing
{
    /// <summary>Reads a route value made of ASCII digits only (no sign, no spaces) into [0, max].</summary>
    public static bool TryGetRouteInt64(HttpContext context, string name, long max, out long value)
    {
        if (context.Request.RouteValues.TryGetValue(name, out var raw)
            && raw is string text
            && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value)
            && value <= max)
        {
            return true;
        }

        value = 0;
        return false;
    }

    /// <summary>
    /// Reads a numeric query parameter into [min, max], or <paramref name="defaultValue"/> when it is absent.
    /// Returns false when it is present but not a number in range.
    /// </summary>
    public static bool TryGetQueryInt64(HttpContext context, string name, long defaultValue, long min, long max, out long value)
    {
        if (!TryGetQueryValue(context.Request.QueryString.Value, name, out var text))
        {
            value = defaultValue;
            return true;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max)
        {
            return true;
        }

        value = 0;
        return false;
    }

    /// <summary>Reads a <see cref="ulong"/> query parameter, or <paramref name="defaultValue"/> when it is absent.</summary>
    public static bool TryGetQueryUInt64(HttpContext context, string name, ulong defaultValue, out ulong value)
    {
        if (!TryGetQueryValue(context.Request.QueryString.Value, name, out var text))
        {
            value = defaultValue;
            return true;
        }

        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>True when the query has <c>name=1</c> or <c>name=true</c>.</summary>
    public static bool IsQueryFlagSet(HttpContext context, string name)
        => TryGetQueryValue(context.Request.QueryString.Value, name, out var text)
            && (text is "1" || text.Equals("true", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Finds the first <c>name=value</c> pair in a raw query string (with or without the leading '?'). Values are
    /// not percent-decoded: the parameters read this way are plain numbers.
    /// </summary>
    public static bool TryGetQueryValue(ReadOnlySpan<char> query, ReadOnlySpan<char> name, out ReadOnlySpan<char> value)
    {
        if (query.StartsWith('?'))
        {
            query = query[1..];
        }

        while (!query.IsEmpty)
        {
            var end = query.IndexOf('&');
            var pair = end < 0 ? query : query[..end];
            query = end < 0 ? default : query[(end + 1)..];

            var equals = pair.IndexOf('=');
            var key = equals < 0 ? pair : pair[..equals];
            if (key.SequenceEqual(name))
            {
                value = equals < 0 ? default : pair[(equals + 1)..];
                return true;
            }
        }

        value = default;
        return false;
    }

    /// <summary>Writes a 400 with a short plain-text reason, unless the response has already started.</summary>
    public static Task WriteBadRequestAsync(HttpContext context, string message)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            context.Abort();
            return Task.CompletedTask;
        }

        var body = Encoding.UTF8.GetBytes(message + "\n");
        response.StatusCode = StatusCodes.Status400BadRequest;
        response.ContentType = Payloads.TextPlainUtf8;
        response.ContentLength = body.Length;
        return response.Body.WriteAsync(body, context.RequestAborted).AsTask();
    }

    /// <summary>
    /// Exceptions that mean "the client went away" (reset, abort, request canceled). A
    /// <see cref="BadHttpRequestException"/> is an <see cref="IOException"/> too, but Kestrel must see it to answer
    /// 400/408/413, so it is not one of them.
    /// </summary>
    public static bool IsClientAbort(Exception exception)
        => exception is OperationCanceledException || (exception is IOException && exception is not BadHttpRequestException);
}
