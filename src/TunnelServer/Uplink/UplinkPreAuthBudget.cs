using System.Buffers;
using System.Text;

namespace Tunnel2.Server.Uplink;

/// <summary>What <see cref="UplinkPreAuthBudget"/> has concluded about a connection so far.</summary>
internal enum PreAuthVerdict
{
    /// <summary>The first request line may still turn out to target the uplink path: the budget applies meanwhile.</summary>
    Undecided,

    /// <summary>The first request targets the uplink path, or the connection is on the dedicated listener: the budget applies.</summary>
    Uplink,

    /// <summary>Anything else (public traffic, an HTTP/2 preface, a TLS record): never looked at again.</summary>
    NotUplink,

    /// <summary>More bytes than the budget before authentication.</summary>
    OverBudget,
}

/// <summary>
/// The byte side of the uplink's pre-authentication budget for one transport (docs/adr/0008-uplink-pre-auth-budget.md).
/// It recognises an uplink by its first request line and counts what the HTTP parser is given before the connection
/// authenticates. It is fed every buffer a read returns (<see cref="Inspect"/>) and every AdvanceTo
/// (<see cref="Advance"/>); both work across any segmentation, one byte per segment included, and no byte is scanned
/// twice.
/// </summary>
/// <remarks>
/// What is charged: every byte up to the end of the first complete request head in the buffer, or the whole buffer
/// when it holds no complete head (so a head that does not end within the budget is refused before the parser has it),
/// and whatever the parser examines. Bytes pipelined behind a complete head are charged only once the parser reads
/// them, so a client's first frames right behind its upgrade request cost nothing if its token is accepted first.
/// <code>
///  shared port:     [CR LF]* method SP target ...      target starts with the uplink path → Uplink
///                                                      a byte that cannot lead there      → NotUplink
///  dedicated port:  every connection is Uplink, unless its first byte opens a TLS record (0x16): the TLS layer then
///                   hands the plaintext to a budget of its own, and this one steps aside.
/// </code>
/// </remarks>
internal struct UplinkPreAuthBudget
{
    // Longer methods are not uplinks: the longest registered method, UPDATEREDIRECTREF (RFC 3253), has 17 letters.
    private const int MaxMethodLength = 20;

    // A TLS record of type handshake (RFC 8446 §5.1): the first byte of every ClientHello.
    private const byte TlsHandshakeRecord = 0x16;

    private const int NotInHead = -1;
    private const int HeadEnded = 4;

    private readonly byte[] _uplinkPath;
    private readonly long _maxBytes;
    private SniffState _sniff;
    private int _matched;
    private long _consumed;
    private long _scanned;
    private long _headEnd;
    private long _charged;
    private int _terminator;

    /// <param name="uplinkPath">The uplink path from <see cref="EncodePath"/>.</param>
    /// <param name="maxBytes">Bytes allowed before authentication.</param>
    /// <param name="sniff">True on a shared port (recognise uplinks); false on the dedicated listener (every connection is one).</param>
    public UplinkPreAuthBudget(byte[] uplinkPath, int maxBytes, bool sniff)
    {
        _uplinkPath = uplinkPath;
        _maxBytes = maxBytes;
        _sniff = sniff ? SniffState.Leading : SniffState.FirstByte;
        _terminator = NotInHead;
        Verdict = sniff ? PreAuthVerdict.Undecided : PreAuthVerdict.Uplink;
    }

    private enum SniffState
    {
        Leading,
        Method,
        Target,
        FirstByte,
        Done,
    }

    public PreAuthVerdict Verdict { get; private set; }

    /// <summary>Bytes counted against the budget so far.</summary>
    public readonly long ChargedBytes => _charged;

    /// <summary>True while the budget applies (neither passed nor exceeded).</summary>
    public readonly bool IsActive => Verdict is PreAuthVerdict.Undecided or PreAuthVerdict.Uplink;

    /// <summary>The path as the sniffer compares it: ASCII, lower case (routing matches literals case-insensitively).</summary>
    public static byte[] EncodePath(string uplinkPath) => Encoding.ASCII.GetBytes(uplinkPath.ToLowerInvariant());

    /// <summary>Looks at a buffer a read returned; it starts at the first byte the parser has not consumed.</summary>
    public PreAuthVerdict Inspect(in ReadOnlySequence<byte> buffer)
    {
        // A complete head the parser has not consumed yet: what lies behind it is not the parser's business yet.
        if (!IsActive || _headEnd > _consumed)
        {
            return Verdict;
        }

        var end = _consumed + buffer.Length;
        var from = Math.Max(_scanned, _consumed);

        // Nothing past the budget needs looking at: a head that has not ended by then is over it anyway.
        var stop = Math.Min(end, _maxBytes + 1);
        if (from < stop)
        {
            var position = from;
            foreach (var memory in buffer.Slice(from - _consumed, stop - from))
            {
                if (Scan(memory.Span, ref position))
                {
                    break;
                }
            }

            _scanned = position;
            if (Verdict == PreAuthVerdict.NotUplink)
            {
                return Verdict;
            }
        }

        Charge(_headEnd > _consumed ? _headEnd : end);
        return Verdict;
    }

    /// <summary>The parser's AdvanceTo, as offsets into the buffer last given to <see cref="Inspect"/>.</summary>
    public PreAuthVerdict Advance(long consumed, long examined)
    {
        if (IsActive)
        {
            Charge(_consumed + examined);
            _consumed += consumed;
        }

        return Verdict;
    }

    private void Charge(long upTo)
    {
        _charged = Math.Max(_charged, upTo);
        if (_charged > _maxBytes)
        {
            Verdict = PreAuthVerdict.OverBudget;
        }
    }

    /// <summary>Scans one segment; true when scanning should stop (not an uplink, or a head ended).</summary>
    private bool Scan(ReadOnlySpan<byte> span, ref long position)
    {
        foreach (var b in span)
        {
            position++;
            if (_sniff != SniffState.Done && !Sniff(b))
            {
                Verdict = PreAuthVerdict.NotUplink;
                return true;
            }

            if (_terminator == NotInHead)
            {
                // Empty lines before a request are skipped by the parser, and are not the end of a head.
                if (b is (byte)'\r' or (byte)'\n')
                {
                    continue;
                }

                _terminator = 0;
            }

            _terminator = b switch
            {
                (byte)'\r' => _terminator is 0 or 2 ? _terminator + 1 : 1,
                (byte)'\n' => _terminator is 1 or 3 ? _terminator + 1 : 0,
                _ => 0,
            };

            if (_terminator == HeadEnded)
            {
                _headEnd = position;
                _terminator = NotInHead;
                return true;
            }
        }

        return false;
    }

    /// <summary>Feeds one byte of the first request line; false when the connection is not an uplink.</summary>
    private bool Sniff(byte b)
    {
        switch (_sniff)
        {
            case SniffState.FirstByte:
                _sniff = SniffState.Done;
                return b != TlsHandshakeRecord;

            case SniffState.Leading when b is (byte)'\r' or (byte)'\n':
                return true;

            case SniffState.Leading:
                _sniff = SniffState.Method;
                goto case SniffState.Method;

            case SniffState.Method when b == (byte)' ':
                if (_matched == 0)
                {
                    return false;
                }

                _sniff = SniffState.Target;
                _matched = 0;
                return true;

            case SniffState.Method:
                return IsTokenChar(b) && ++_matched <= MaxMethodLength;

            case SniffState.Target:
                var lower = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
                if (lower != _uplinkPath[_matched])
                {
                    return false;
                }

                if (++_matched == _uplinkPath.Length)
                {
                    _sniff = SniffState.Done;
                    Verdict = PreAuthVerdict.Uplink;
                }

                return true;

            default:
                return true;
        }
    }

    /// <summary>tchar of RFC 9110 §5.6.2, the characters of a method.</summary>
    private static bool IsTokenChar(byte b)
        => char.IsAsciiLetterOrDigit((char)b) || b is (byte)'!' or (byte)'#' or (byte)'$' or (byte)'%' or (byte)'&' or (byte)'\''
            or (byte)'*' or (byte)'+' or (byte)'-' or (byte)'.' or (byte)'^' or (byte)'_' or (byte)'`' or (byte)'|' or (byte)'~';
}
