namespace Tunnel2.Protocol.FlowControl;

internal static class FlowControlConstants
{
    /// <summary>
    /// Connection-level credit before any WINDOW_UPDATE on stream 0, as HTTP/2's 65,535 rounded to 64 KiB.
    /// Each endpoint raises it right after its SETTINGS.
    /// </summary>
    public const int InitialConnectionWindowSize = 64 * 1024;

    /// <summary>
    /// Consumed bytes are returned to the sender in batches of at least window / 4: fewer WINDOW_UPDATE frames than
    /// per-read updates, while the sender never stalls on a window more than three quarters used. (HttpClient batches at
    /// 1/8, dotnet/corefx#35432; a larger divisor costs frames, a smaller one stalls.)
    /// </summary>
    public const int WindowUpdateDivisor = 4;
}
