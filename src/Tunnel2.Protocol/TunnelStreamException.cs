namespace Tunnel2.Protocol;

/// <summary>
/// The end of one stream by RESET, from either side; the connection and its other streams carry on.
/// Observed by whoever reads or writes the stream after it was reset.
/// </summary>
public sealed class TunnelStreamException : Exception
{
    public TunnelStreamException(TunnelErrorCode errorCode, string message)
        : base(message)
    {
        ErrorCode = errorCode;
    }

    public TunnelStreamException(TunnelErrorCode errorCode, string message, Exception? innerException)
        : base(message, innerException)
    {
        ErrorCode = errorCode;
    }

    public TunnelStreamException()
        : this(TunnelErrorCode.Cancel, "The tunnel stream was reset.")
    {
    }

    public TunnelStreamException(string message)
        : this(TunnelErrorCode.Cancel, message)
    {
    }

    public TunnelStreamException(string message, Exception innerException)
        : this(TunnelErrorCode.Cancel, message, innerException)
    {
    }

    public TunnelErrorCode ErrorCode { get; }

    /// <summary>True when the peer sent the RESET; false when this side reset the stream or the connection ended.</summary>
    public bool ResetByPeer { get; init; }
}
