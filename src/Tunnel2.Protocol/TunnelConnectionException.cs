namespace Tunnel2.Protocol;

/// <summary>
/// A violation that ends the whole uplink connection (GOAWAY with <see cref="ErrorCode"/>), as Kestrel's
/// Http2ConnectionErrorException. Thrown only for peer misbehaviour, never for ordinary outcomes.
/// </summary>
public sealed class TunnelConnectionException : Exception
{
    public TunnelConnectionException(TunnelErrorCode errorCode, string message)
        : base(message)
    {
        ErrorCode = errorCode;
    }

    public TunnelConnectionException(TunnelErrorCode errorCode, string message, Exception innerException)
        : base(message, innerException)
    {
        ErrorCode = errorCode;
    }

    public TunnelConnectionException()
        : this(TunnelErrorCode.InternalError, "The tunnel connection failed.")
    {
    }

    public TunnelConnectionException(string message)
        : this(TunnelErrorCode.InternalError, message)
    {
    }

    public TunnelConnectionException(string message, Exception innerException)
        : this(TunnelErrorCode.InternalError, message, innerException)
    {
    }

    public TunnelErrorCode ErrorCode { get; }
}
