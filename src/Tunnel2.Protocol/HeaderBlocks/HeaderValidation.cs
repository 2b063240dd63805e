using System.Buffers;

namespace Tunnel2.Protocol.HeaderBlocks;

/// <summary>Field name and value rules of RFC 9110 §5.1 and §5.5, applied on both ends of the uplink.</summary>
public static class HeaderValidation
{
    // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    private static readonly SearchValues<char> s_tokenChars =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private static readonly SearchValues<byte> s_tokenBytes =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    public static bool IsToken(ReadOnlySpan<char> name) => !name.IsEmpty && !name.ContainsAnyExcept(s_tokenChars);

    public static bool IsToken(ReadOnlySpan<byte> name) => !name.IsEmpty && !name.ContainsAnyExcept(s_tokenBytes);

    /// <summary>HTAB, SP, VCHAR and obs-text only: no CR, LF, NUL or other control characters; no char above U+00FF.</summary>
    public static bool IsValidValue(ReadOnlySpan<char> value)
    {
        foreach (var c in value)
        {
            if ((c < 0x20 && c != '\t') || c == 0x7F || c > 0xFF)
            {
                return false;
            }
        }

        return true;
    }

    public static bool IsValidValue(ReadOnlySpan<byte> value)
    {
        foreach (var b in value)
        {
            if ((b < 0x20 && b != (byte)'\t') || b == 0x7F)
            {
                return false;
            }
        }

        return true;
    }
}
