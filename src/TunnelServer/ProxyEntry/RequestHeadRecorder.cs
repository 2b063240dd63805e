using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Tasks.Sources;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Server.ProxyEntry;

/// <summary>
/// The transport an HTTP/1.x connection's parser reads through, keeping a copy of the bytes it consumes for each
/// request head so that the entry can read the head's <c>Connection</c> field as the client sent it
/// (docs/adr/0013-connection-field-as-sent.md). Kestrel keeps only the <c>keep-alive</c>, <c>close</c> or
/// <c>Upgrade</c> token of a <c>Connection</c> value that holds one of them, so <c>Connection: keep-alive, X-Secret</c>
/// would otherwise forward the nominated <c>X-Secret</c>.
/// </summary>
/// <remarks>
/// <para>Kestrel consumes a request head before it calls the application, so when the entry calls
/// <see cref="EndHead"/> the head is the end of what was recorded; anything recorded before it (what was left of the
/// previous request's body) precedes its request line and is never read. A head is found by walking its lines back
/// from the empty line that ends it: every field line is <c>token ":" value</c>, and the first line that is not is the
/// request line, which must end in <c>HTTP/1.x</c>.</para>
/// <para>After <see cref="EndHead"/> a body of known length is skipped uncopied; a chunked body is copied, keeping at
/// most two head sizes; an upgraded connection (WebSocket, uplink) is never recorded again. A connection that begins
/// with a TLS record or the HTTP/2 preface is never recorded at all. The copy is rented from the shared array pool
/// for the head and returned when the entry takes it, so an idle connection holds none.</para>
/// <para>The HTTP/1.x parser and the request it serves never read at the same time, so nothing here is locked. A read
/// that does not complete at once (every wait for the next request) completes through this object, reused, rather
/// than through an async method, whose box would be allocated per request under load.</para>
/// </remarks>
internal sealed class RequestHeadRecorder : PipeReader, IDuplexPipe, IValueTaskSource<ReadResult>
{
    private const int InitialCopySize = 1024;

    private readonly IDuplexPipe _transport;
    private readonly PipeReader _inner;
    private readonly int _maxHeadSize;
    private readonly Action _onReadCompleted;
    private ManualResetValueTaskSourceCore<ReadResult> _read;
    private ValueTaskAwaiter<ReadResult> _pendingRead;
    private ReadOnlySequence<byte> _buffer;
    private bool _hasBuffer;
    private bool _off;
    private bool _started;
    private long _skip;
    private byte[]? _copy;
    private int _length;
    private bool _headRead;
    private string? _connectionField;

    /// <param name="transport">The transport to read through.</param>
    /// <param name="maxHeadSize">The largest head the parser accepts (request line and fields, with line ends).</param>
    public RequestHeadRecorder(IDuplexPipe transport, int maxHeadSize)
    {
        _transport = transport;
        _inner = transport.Input;
        _maxHeadSize = maxHeadSize;
        _onReadCompleted = OnReadCompleted;
    }

    public PipeReader Input => this;

    public PipeWriter Output => _transport.Output;

    /// <summary>The transport this one reads through.</summary>
    public IDuplexPipe InnerTransport => _transport;

    /// <summary>False once the connection turned out not to be HTTP/1.x in plaintext, or was upgraded.</summary>
    public bool IsRecording => !_off;

    /// <summary>
    /// The request whose head was just parsed has reached the application: take its head, and skip what follows it
    /// on this connection up to the next head. Call once per request, before anything reads its body.
    /// </summary>
    /// <param name="needConnectionField">Read the head's <c>Connection</c> field (else the copy is only let go).</param>
    /// <param name="bodyLength">The body's length when it is known (Content-Length), 0 when there is none, -1 when
    /// it is chunked.</param>
    /// <param name="upgrade">The request may switch protocols: what follows its head is never HTTP/1.x again.</param>
    public void EndHead(bool needConnectionField, long bodyLength, bool upgrade)
    {
        if (_off)
        {
            // Never HTTP/1.x (its requests, HTTP/2 streams, may come here at the same time), or upgraded: no head.
            return;
        }

        _connectionField = null;
        _headRead = false;

        if (needConnectionField && _copy is not null)
        {
            _headRead = TryReadConnectionField(_copy.AsSpan(0, _length), out _connectionField);
        }

        ReturnCopy();
        if (upgrade)
        {
            _off = true;
        }
        else if (bodyLength > 0)
        {
            _skip = bodyLength;
        }
    }

    /// <summary>
    /// The <c>Connection</c> field of the head taken by the last <see cref="EndHead"/> that asked for it, as the client
    /// sent it (several lines joined with ", "); null when it had none.
    /// </summary>
    /// <returns>False when the head was not recorded: use what the parser made of the field.</returns>
    public bool TryGetConnectionField(out string? value)
    {
        value = _connectionField;
        return _headRead;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_off)
        {
            return _inner.ReadAsync(cancellationToken);
        }

        // Consumed exactly once: its result now, or its awaiter's once it completes (OnReadCompleted).
#pragma warning disable CA2012
        var read = _inner.ReadAsync(cancellationToken);
#pragma warning restore CA2012
        if (read.IsCompletedSuccessfully)
        {
            var result = read.Result;
            Keep(result);
            return new ValueTask<ReadResult>(result);
        }

        _read.Reset();
        _pendingRead = read.GetAwaiter();
        _pendingRead.UnsafeOnCompleted(_onReadCompleted);
        return new ValueTask<ReadResult>(this, _read.Version);
    }

    public override bool TryRead(out ReadResult result)
    {
        if (!_inner.TryRead(out result))
        {
            return false;
        }

        if (!_off)
        {
            Keep(result);
        }

        return true;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (_hasBuffer)
        {
            _hasBuffer = false;
            if (!_off)
            {
                Record(_buffer.Slice(0, consumed));
            }

            _buffer = default;
        }

        _inner.AdvanceTo(consumed, examined);
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null)
    {
        _off = true;
        ReturnCopy();
        _inner.Complete(exception);
    }

    public override ValueTask CompleteAsync(Exception? exception = null)
    {
        _off = true;
        ReturnCopy();
        return _inner.CompleteAsync(exception);
    }

    /// <summary>
    /// Reads the <c>Connection</c> field of the request head at the end of <paramref name="recorded"/> (what came
    /// before the head is ignored).
    /// </summary>
    /// <param name="value">The field's values joined with ", ", in the order sent; null when the head has none.</param>
    /// <returns>False when <paramref name="recorded"/> does not end with a whole HTTP/1.x request head.</returns>
    internal static bool TryReadConnectionField(ReadOnlySpan<byte> recorded, out string? value)
    {
        value = null;

        // The head ends with an empty line; before it, the line end of its last line.
        var end = recorded.Length;
        if (!TrimLineEnd(recorded, ref end) || !TrimLineEnd(recorded, ref end))
        {
            return false;
        }

        while (true)
        {
            var start = recorded[..end].LastIndexOf((byte)'\n') + 1;
            var line = recorded[start..end];
            var colon = line.IndexOf((byte)':');
            if (colon < 0 || !HeaderValidation.IsToken(line[..colon]))
            {
                // Not a field line: the request line, or the head is not whole.
                return IsRequestLine(line);
            }

            if (Ascii.EqualsIgnoreCase(line[..colon], "Connection"u8))
            {
                var field = Encoding.Latin1.GetString(line[(colon + 1)..].Trim(" \t"u8));
                value = value is null ? field : string.Concat(field, ", ", value);
            }

            end = start;
            if (!TrimLineEnd(recorded, ref end))
            {
                return false;
            }
        }
    }

    private static bool TrimLineEnd(ReadOnlySpan<byte> data, ref int end)
    {
        if (end == 0 || data[end - 1] != (byte)'\n')
        {
            return false;
        }

        end--;
        if (end > 0 && data[end - 1] == (byte)'\r')
        {
            end--;
        }

        return true;
    }

    private static bool IsRequestLine(ReadOnlySpan<byte> line)
    {
        var space = line.IndexOf((byte)' ');
        return space > 0
            && HeaderValidation.IsToken(line[..space])
            && line.Length > space + 9
            && line[^9] == (byte)' '
            && line[^8..^1].SequenceEqual("HTTP/1."u8);
    }

    ReadResult IValueTaskSource<ReadResult>.GetResult(short token) => _read.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<ReadResult>.GetStatus(short token) => _read.GetStatus(token);

    void IValueTaskSource<ReadResult>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _read.OnCompleted(continuation, state, token, flags);

    private void OnReadCompleted()
    {
        var read = _pendingRead;
        _pendingRead = default;
        ReadResult result;
        try
        {
            result = read.GetResult();
        }
        catch (Exception ex)
        {
            _read.SetException(ex);
            return;
        }

        if (!_off)
        {
            Keep(result);
        }

        _read.SetResult(result);
    }

    private void Keep(in ReadResult result)
    {
        _buffer = result.Buffer;
        _hasBuffer = true;
    }

    private void Record(ReadOnlySequence<byte> consumed)
    {
        if (consumed.IsEmpty)
        {
            return;
        }

        if (!_started)
        {
            _started = true;
            var first = consumed.FirstSpan;
            if (first[0] == 0x16 || first.StartsWith("PRI * HTTP/2.0"u8))
            {
                // A TLS record (the plaintext gets a recorder of its own) or HTTP/2: no HTTP/1.x head to keep.
                _off = true;
                return;
            }
        }

        if (_skip > 0)
        {
            var skipped = Math.Min(_skip, consumed.Length);
            _skip -= skipped;
            consumed = consumed.Slice(skipped);
            if (consumed.IsEmpty)
            {
                return;
            }
        }

        var count = consumed.Length;
        if (count >= _maxHeadSize)
        {
            // Only the end can still hold a head.
            consumed = consumed.Slice(count - _maxHeadSize);
            count = _maxHeadSize;
            _length = 0;
        }
        else if (_length + count > 2 * _maxHeadSize)
        {
            // Keep the last head size (a chunked body before the next head): amortised, one more copy per byte.
            var keep = _maxHeadSize - (int)count;
            _copy.AsSpan(_length - keep, keep).CopyTo(_copy);
            _length = keep;
        }

        var needed = _length + (int)count;
        if (_copy is null || _copy.Length < needed)
        {
            var size = Math.Max(needed, _copy is null ? InitialCopySize : Math.Min(_copy.Length * 2, 2 * _maxHeadSize));
            var larger = ArrayPool<byte>.Shared.Rent(size);
            if (_copy is not null)
            {
                _copy.AsSpan(0, _length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(_copy);
            }

            _copy = larger;
        }

        consumed.CopyTo(_copy.AsSpan(_length));
        _length = needed;
    }

    private void ReturnCopy()
    {
        var copy = _copy;
        _copy = null;
        _length = 0;
        if (copy is not null)
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }
}
