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

    /// <summary>True when every char is at most U+00FF (one byte in ISO-8859-1).</summary>
    public static bool IsLatin1(ReadOnlySpan<char> value)
    {
        foreach (var c in value)
        {
            if (c > 0xFF)
            {
                return false;
            }
        }

        return true;
    }

    public static bool IsToken(ReadOnlySpan<char> name) => !name.IsEmpty && !name.ContainsAnyExcept(s_tokenChars);

    public static bool IsToken(ReadOnlySpan<byte> name) => !name.IsEmpty && !name.ContainsAnyExcept(s_tokenBytes);

    private static readonly SearchValues<char> s_printableAscii = SearchValues.Create(
        " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    // Bytes a value may not contain: controls other than HTAB, and DEL.
    private static readonly SearchValues<byte> s_invalidValueBytes = SearchValues.Create(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127]);

    /// <summary>HTAB, SP, VCHAR and obs-text only: no CR, LF, NUL or other control characters; no char above U+00FF.</summary>
    public static bool IsValidValue(ReadOnlySpan<char> value)
    {
        // Fast path, vectorised: printable ASCII only, which is nearly every real value. (SearchValues rather than
        // ContainsAnyExceptInRange, whose generic comparison allocates on every call in .NET 10.0.12.)
        if (!value.ContainsAnyExcept(s_printableAscii))
        {
            return true;
        }

        foreach (var c in value)
        {
            if ((c < 0x20 && c != '\t') || c == 0x7F || c > 0xFF)
            {
                return false;
            }
        }

        return true;
    }

    public static bool IsValidValue(ReadOnlySpan<byte> value) => !value.ContainsAny(s_invalidValueBytes);
}
