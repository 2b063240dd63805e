using System.Buffers.Binary;

namespace Tunnel2.Protocol.HeaderBlocks;

/// <summary>Receives the parts of a header block as spans over the block; nothing is allocated by the reader.</summary>
public interface IHeaderBlockHandler
{
    /// <param name="methodCode">The static method code, or 0 when <paramref name="method"/> is a literal.</param>
    void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target);

    void OnResponseHead(int statusCode);

    void OnTrailersHead();

    /// <param name="staticIndex">The static table index of the name, or 0 when <paramref name="name"/> is a literal.</param>
    void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value);
}

/// <summary>Decodes header blocks (docs/protocol.md §4). Every length is checked against the block before use.</summary>
public static class HeaderBlockReader
{
    /// <summary>Per-field overhead counted against the header list limit, as RFC 9113 §6.5.2.</summary>
    public const int FieldOverhead = 32;

    /// <summary>Decodes <paramref name="block"/>, calling <paramref name="handler"/> for the head and each field.</summary>
    /// <returns>Null on success, else a constant message naming the problem (a stream error, PROTOCOL_ERROR).</returns>
    public static string? Read<THandler>(ReadOnlySpan<byte> block, ref THandler handler, int maxHeaderListSize)
        where THandler : IHeaderBlockHandler
    {
        if (block.IsEmpty)
        {
            return "The header block is empty.";
        }

        var kind = (HeaderBlockKind)block[0];
        var rest = block.Slice(1);
        switch (kind)
        {
            case HeaderBlockKind.Request:
                if (rest.IsEmpty)
                {
                    return "The request head is truncated.";
                }

                int methodCode = rest[0];
                rest = rest.Slice(1);
                ReadOnlySpan<byte> method = default;
                if (methodCode == 0)
                {
                    if (!TryReadString(ref rest, out method) || !HeaderValidation.IsToken(method))
                    {
                        return "The request method is truncated or not a token.";
                    }
                }
                else if (StaticTable.GetMethod(methodCode) is null)
                {
                    return "The request method code is not in the static table.";
                }

                if (!TryReadString(ref rest, out var target) || target.IsEmpty || !HeaderValidation.IsValidValue(target))
                {
                    return "The request target is truncated, empty or has control characters.";
                }

                handler.OnRequestHead(methodCode, method, target);
                break;
            case HeaderBlockKind.Response:
                if (rest.Length < 2)
                {
                    return "The response head is truncated.";
                }

                int status = BinaryPrimitives.ReadUInt16BigEndian(rest);
                if (status is < 100 or > 999)
                {
                    return "The response status is outside 100-999.";
                }

                rest = rest.Slice(2);
                handler.OnResponseHead(status);
                break;
            case HeaderBlockKind.Trailers:
                handler.OnTrailersHead();
                break;
            default:
                return "The header block kind is unknown.";
        }

        var listSize = 0;
        while (!rest.IsEmpty)
        {
            int index = rest[0];
            rest = rest.Slice(1);
            ReadOnlySpan<byte> name = default;
            if (index == 0)
            {
                if (!TryReadString(ref rest, out name) || !HeaderValidation.IsToken(name))
                {
                    return "A header name is truncated or not a token.";
                }
            }
            else if (index > StaticTable.MaxIndex || StaticTable.GetName(index) is null)
            {
                return "A header name index is not in the static table.";
            }

            if (!TryReadString(ref rest, out var value))
            {
                return "A header value is truncated.";
            }

            if (!HeaderValidation.IsValidValue(value))
            {
                return "A header value contains CR, LF, NUL or another control character.";
            }

            // A table name counts with its decoded spelling: the limit is on the decoded list (RFC 9113 §6.5.2).
            var nameLength = index == 0 ? name.Length : StaticTable.GetName(index)!.Length;
            listSize += nameLength + value.Length + FieldOverhead;
            if (listSize > maxHeaderListSize)
            {
                return "The header list is larger than the announced limit.";
            }

            handler.OnField(index, name, value);
        }

        return null;
    }

    private static bool TryReadString(scoped ref ReadOnlySpan<byte> source, out ReadOnlySpan<byte> value)
    {
        var prefix = VarInt.TryRead(source, out var length);
        if (prefix == 0 || source.Length - prefix < length)
        {
            value = default;
            return false;
        }

        value = source.Slice(prefix, length);
        source = source.Slice(prefix + length);
        return true;
    }
}
