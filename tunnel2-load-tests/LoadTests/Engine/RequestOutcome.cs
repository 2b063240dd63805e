using System.Globalization;

namespace Tunnel2.LoadTests.Engine;

/// <summary>Why a request counts as failed.</summary>
internal enum FailureKind
{
    /// <summary>A response arrived with a status outside 2xx/3xx; the detail is the status code.</summary>
    Status,

    /// <summary>Connect, send or receive failed; the detail is the <see cref="HttpRequestError"/>.</summary>
    Connection,

    /// <summary>No complete response within the per-request timeout.</summary>
    Timeout,

    /// <summary>Due, but not started: the generator's in-flight cap was reached (k6 "dropped_iterations").</summary>
    Dropped,

    /// <summary>Still running when the run was cancelled (Ctrl-C or the run's hard time cap).</summary>
    Aborted,

    /// <summary>An unexpected exception in the generator itself; the run's notes carry the first message.</summary>
    Error,
}

/// <summary>A failure class and its detail (status code or <see cref="HttpRequestError"/> value).</summary>
internal readonly record struct FailureReason(FailureKind Kind, int Detail = 0)
{
    public static FailureReason ForStatus(int statusCode) => new(FailureKind.Status, statusCode);

    public static FailureReason ForConnection(HttpRequestError error) => new(FailureKind.Connection, (int)error);

    /// <summary>Stable text used in reports, CSV and JSON: <c>status 503</c>, <c>connection (ConnectionError)</c>, <c>timeout</c>.</summary>
    public override string ToString() => Kind switch
    {
        FailureKind.Status => "status " + Detail.ToString(CultureInfo.InvariantCulture),
        FailureKind.Connection => Detail == 0 ? "connection" : $"connection ({(HttpRequestError)Detail})",
        FailureKind.Timeout => "timeout",
        FailureKind.Dropped => "dropped",
        FailureKind.Aborted => "aborted",
        _ => "generator error",
    };
}

/// <summary>The result of one request: success, or the reason it failed.</summary>
internal readonly record struct RequestOutcome(FailureReason? Failure, int StatusCode, long BytesReceived)
{
    public bool IsSuccess => Failure is null;

    public static RequestOutcome FromStatus(int statusCode, long bytesReceived) =>
        statusCode is >= 200 and < 400
            ? new RequestOutcome(null, statusCode, bytesReceived)
            : new RequestOutcome(FailureReason.ForStatus(statusCode), statusCode, bytesReceived);

    public static RequestOutcome Failed(FailureReason reason) => new(reason, 0, 0);
}
