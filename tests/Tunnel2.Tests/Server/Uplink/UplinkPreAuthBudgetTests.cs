using System.Buffers;
using System.Text;
using Tunnel2.Server.Uplink;
using Tunnel2.Testing;

namespace Tunnel2.Tests.Server.Uplink;

/// <summary>
/// The byte side of the uplink's pre-authentication budget: recognising an uplink by its first request line and
/// counting what the HTTP parser is given, whatever the segmentation. <see cref="Parse"/> plays Kestrel's HTTP/1 parser:
/// it examines everything until a head is complete, then consumes exactly the head.
/// </summary>
public sealed class UplinkPreAuthBudgetTests
{
    private const int MaxBytes = 4096;
    private const string UplinkHead = "GET /tunnel/connect HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: tunnel2\r\nAuthorization: Bearer abc\r\n\r\n";

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void Inspect_UplinkHead_RecognisedAndChargedItsLength_InAnySegmentation(int segmentSize)
    {
        var budget = Shared();

        var verdicts = Parse(ref budget, Bytes(UplinkHead), segmentSize);

        Assert.Equal(PreAuthVerdict.Uplink, verdicts[^1]);
        Assert.Equal(UplinkHead.Length, budget.ChargedBytes);
        Assert.DoesNotContain(PreAuthVerdict.NotUplink, verdicts);
    }

    [Fact]
    public void Inspect_RequestLineOneBytePerSegment_UndecidedUntilThePathMatches()
    {
        var budget = Shared();
        var line = Bytes("GET /tunnel/connect");
        for (var n = 1; n <= line.Length; n++)
        {
            // The parser has examined everything so far and consumed nothing: each read returns the whole line so far,
            // one byte per segment.
            var verdict = budget.Inspect(OneBytePerSegment(line.AsSpan(0, n)));
            Assert.Equal(n == line.Length ? PreAuthVerdict.Uplink : PreAuthVerdict.Undecided, verdict);
            Assert.Equal(n, budget.ChargedBytes);
            budget.Advance(0, n);
        }
    }

    [Theory]
    [InlineData("GET /session/22222222-2222-2222-2222-222222222222/ HTTP/1.1\r\n", 6)]
    [InlineData("GET / HTTP/1.1\r\n", 6)]
    [InlineData("GET /tunnel/conn HTTP/1.1\r\n", 17)]
    [InlineData("GET /tunnelx HTTP/1.1\r\n", 12)]
    [InlineData("GET http://host/tunnel/connect HTTP/1.1\r\n", 5)]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 5)]
    [InlineData("\u0016\u0003\u0001\u0002\u0000\u0001", 1)]
    [InlineData(" GET /tunnel/connect HTTP/1.1\r\n", 1)]
    [InlineData("GET\r\n", 4)]
    [InlineData("ABCDEFGHIJKLMNOPQRSTUVWXYZ /tunnel/connect HTTP/1.1\r\n", 21)]
    public void Inspect_AnythingElse_NotUplinkAtTheFirstByteThatCannotLeadThere_InAnySegmentation(string first, int decidedAfter)
    {
        foreach (var segmentSize in new[] { 0, 1, 3 })
        {
            var budget = Shared();
            var bytes = Bytes(first + new string('x', 20_000));
            var verdicts = Parse(ref budget, bytes, segmentSize);

            Assert.Equal(PreAuthVerdict.NotUplink, verdicts[^1]);
            Assert.DoesNotContain(PreAuthVerdict.OverBudget, verdicts);
            Assert.True(budget.ChargedBytes < decidedAfter, $"{budget.ChargedBytes} bytes charged (segments of {segmentSize})");
        }
    }

    [Theory]
    [InlineData("GET /TUNNEL/Connect HTTP/1.1\r\n")]
    [InlineData("GET /tunnel/connect/ HTTP/1.1\r\n")]
    [InlineData("GET /tunnel/connectX HTTP/1.1\r\n")]
    [InlineData("POST /tunnel/connect HTTP/1.1\r\n")]
    [InlineData("\r\n\r\nGET /tunnel/connect HTTP/1.1\r\n")]
    public void Inspect_TargetStartsWithTheUplinkPath_Uplink(string line)
    {
        var budget = Shared();

        Assert.Equal(PreAuthVerdict.Uplink, budget.Inspect(new ReadOnlySequence<byte>(Bytes(line))));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100)]
    public void Inspect_HeadThatDoesNotEndWithinTheBudget_OverBudgetBeforeTheParserHasIt(int segmentSize)
    {
        var budget = Shared();
        var head = UplinkHead.Replace("\r\n\r\n", $"\r\nX-Pad: {new string('a', 6 * 1024)}\r\n\r\n", StringComparison.Ordinal);

        var verdicts = Parse(ref budget, Bytes(head), segmentSize);

        Assert.Equal(PreAuthVerdict.OverBudget, verdicts[^1]);
        Assert.InRange(budget.ChargedBytes, MaxBytes + 1, segmentSize == 0 ? head.Length : MaxBytes + segmentSize);
        Assert.DoesNotContain(PreAuthVerdict.NotUplink, verdicts);
    }

    [Fact]
    public void Inspect_HeadWithinTheBudget_BytesPipelinedBehindItAreNotCharged()
    {
        var budget = Shared();
        var stream = Bytes(UplinkHead + new string('\0', 64 * 1024));

        // One read with everything: the head ends within the budget, the 64 KiB behind it are not the parser's yet.
        Assert.Equal(PreAuthVerdict.Uplink, budget.Inspect(new ReadOnlySequence<byte>(stream)));
        Assert.Equal(UplinkHead.Length, budget.ChargedBytes);
        Assert.Equal(PreAuthVerdict.Uplink, budget.Advance(UplinkHead.Length, UplinkHead.Length));
        Assert.Equal(UplinkHead.Length, budget.ChargedBytes);
    }

    [Fact]
    public void Advance_WhatTheParserReadsAfterTheHead_IsCharged()
    {
        var budget = Shared();
        var stream = Bytes(UplinkHead + new string('b', 8 * 1024));
        budget.Inspect(new ReadOnlySequence<byte>(stream));
        budget.Advance(UplinkHead.Length, UplinkHead.Length);

        // The parser goes on reading (a body, the next request) before the connection authenticated.
        var rest = new ReadOnlySequence<byte>(stream.AsMemory(UplinkHead.Length));
        var verdict = budget.Inspect(rest);

        Assert.Equal(PreAuthVerdict.OverBudget, verdict);
        Assert.Equal(stream.Length, budget.ChargedBytes);
    }

    [Fact]
    public void Inspect_CompleteHeadNotYetConsumed_NothingMoreCharged()
    {
        var budget = Shared();
        var stream = Bytes(UplinkHead + new string('c', 8 * 1024));
        budget.Inspect(new ReadOnlySequence<byte>(stream));

        // Read again before AdvanceTo moved past the head (a cancelled read, say): still only the head.
        Assert.Equal(PreAuthVerdict.Uplink, budget.Inspect(new ReadOnlySequence<byte>(stream)));
        Assert.Equal(UplinkHead.Length, budget.ChargedBytes);
    }

    [Fact]
    public void Inspect_EmptyLinesWithoutEnd_OverBudget()
    {
        var budget = Shared();

        var verdicts = Parse(ref budget, Bytes(string.Concat(Enumerable.Repeat("\r\n", 3000))), segmentSize: 64);

        Assert.Equal(PreAuthVerdict.OverBudget, verdicts[^1]);
    }

    [Fact]
    public void Inspect_DedicatedListener_EveryConnectionIsAnUplink()
    {
        var budget = new UplinkPreAuthBudget(UplinkPreAuthBudget.EncodePath("/tunnel/connect"), MaxBytes, sniff: false);
        Assert.Equal(PreAuthVerdict.Uplink, budget.Verdict);

        var verdicts = Parse(ref budget, Bytes("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + new string('d', 8 * 1024)), segmentSize: 1);

        Assert.Equal(PreAuthVerdict.OverBudget, verdicts[^1]);
    }

    [Fact]
    public void Inspect_DedicatedListener_TlsRecord_StepsAsideForTheTlsLayersPlaintext()
    {
        var budget = new UplinkPreAuthBudget(UplinkPreAuthBudget.EncodePath("/tunnel/connect"), MaxBytes, sniff: false);
        byte[] clientHello = [0x16, 0x03, 0x01, 0x20, 0x00, .. new byte[8192]];

        Assert.Equal(PreAuthVerdict.NotUplink, budget.Inspect(new ReadOnlySequence<byte>(clientHello)));
    }

    [Fact]
    public void Inspect_UplinkPathOtherThanTheDefault_RecognisedByIt()
    {
        var budget = new UplinkPreAuthBudget(UplinkPreAuthBudget.EncodePath("/Edge/Uplink"), MaxBytes, sniff: true);

        Assert.Equal(PreAuthVerdict.Uplink, budget.Inspect(new ReadOnlySequence<byte>(Bytes("GET /edge/uplink HTTP/1.1\r\n"))));
    }

    private static UplinkPreAuthBudget Shared() => new(UplinkPreAuthBudget.EncodePath("/tunnel/connect"), MaxBytes, sniff: true);

    private static byte[] Bytes(string text) => Encoding.Latin1.GetBytes(text);

    private static ReadOnlySequence<byte> OneBytePerSegment(ReadOnlySpan<byte> bytes)
        => ReadOnlySequenceFactory.Split(bytes, [.. Enumerable.Range(1, Math.Max(bytes.Length - 1, 0))]);

    /// <summary>
    /// Delivers <paramref name="stream"/> in reads of <paramref name="segmentSize"/> new bytes each (0: all at once), as
    /// a pipe does: every read returns all unconsumed bytes, one segment per read that brought them, until the budget
    /// decides or the stream ends. The parser examines everything until a head is complete, then consumes the head.
    /// </summary>
    private static List<PreAuthVerdict> Parse(ref UplinkPreAuthBudget budget, byte[] stream, int segmentSize)
    {
        var verdicts = new List<PreAuthVerdict>();
        ReadOnlySequenceFactory.Segment? first = null;
        ReadOnlySequenceFactory.Segment? last = null;
        var consumed = 0;
        var available = 0;
        while (available < stream.Length)
        {
            var read = segmentSize == 0 ? stream.Length : Math.Min(segmentSize, stream.Length - available);
            var chunk = stream.AsMemory(available, read);
            last = last is null ? first = new ReadOnlySequenceFactory.Segment(chunk, available) : last.Append(chunk);
            available += read;

            // Drop segments the parser has consumed entirely, then start at the first unconsumed byte.
            while (first!.RunningIndex + first.Memory.Length <= consumed)
            {
                first = (ReadOnlySequenceFactory.Segment)first.Next!;
            }

            var buffer = new ReadOnlySequence<byte>(first, (int)(consumed - first.RunningIndex), last, last.Memory.Length);
            var verdict = budget.Inspect(buffer);
            verdicts.Add(verdict);
            if (verdict is PreAuthVerdict.NotUplink or PreAuthVerdict.OverBudget)
            {
                return verdicts;
            }

            var unconsumed = stream.AsSpan(consumed, available - consumed);
            var headEnd = unconsumed.IndexOf("\r\n\r\n"u8);
            var head = headEnd < 0 ? 0 : headEnd + 4;
            verdict = budget.Advance(head, head == 0 ? unconsumed.Length : head);
            verdicts.Add(verdict);
            if (verdict == PreAuthVerdict.OverBudget)
            {
                return verdicts;
            }

            consumed += head;
        }

        return verdicts;
    }
}
