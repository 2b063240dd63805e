using Tunnel2.Server.Hosting;
using Tunnel2.Testing;

namespace Tunnel2.Tests.Server;

public sealed class TransportMemoryPoolTests
{
    [Fact]
    public void Rent_GivesAtLeastTheBlockSize_EvenForSmallHints()
    {
        using var pool = new TransportMemoryPoolFactory(16 * 1024).Create();

        using var small = pool.Rent(2048);
        using var unspecified = pool.Rent();

        Assert.Equal(16 * 1024, pool.MaxBufferSize);
        Assert.True(small.Memory.Length >= 16 * 1024, $"{small.Memory.Length} bytes");
        Assert.True(unspecified.Memory.Length >= 16 * 1024, $"{unspecified.Memory.Length} bytes");
    }

    [Fact]
    public void Rent_LargerThanTheBlock_IsHonoured()
    {
        using var pool = new TransportMemoryPool(16 * 1024);

        using var large = pool.Rent(100_000);

        Assert.True(large.Memory.Length >= 100_000, $"{large.Memory.Length} bytes");
    }

    [Fact]
    public void Dispose_Twice_ReturnsTheArrayOnce_AndTheBlockIsUnusableAfter()
    {
        using var pool = new TransportMemoryPool(16 * 1024);
        var block = pool.Rent();

        block.Dispose();
        block.Dispose();

        Assert.Throws<ObjectDisposedException>(() => block.Memory);
    }

    [Fact]
    public void Rent_AfterDispose_ReusesTheOwner_WithAFreshArray()
    {
        using var pool = new TransportMemoryPool(16 * 1024);
        var first = pool.Rent();
        first.Memory.Span.Fill(1);
        first.Dispose();

        var second = pool.Rent();
        var third = pool.Rent();

        Assert.Same(first, second);
        Assert.NotSame(second, third);
        Assert.True(second.Memory.Length >= 16 * 1024);
        Assert.False(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(second.Memory, out var a)
            && System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(third.Memory, out var b) && ReferenceEquals(a.Array, b.Array),
            "Two live blocks must never share an array.");
        second.Dispose();
        third.Dispose();
    }

    [Fact]
    public void LargeBlocks_WhileTheBudgetLasts_ThenBlocksOfTheBlockSize()
    {
        var factory = new TransportMemoryPoolFactory(16 * 1024, 64 * 1024, 128 * 1024);
        using var pool = factory.Create();

        var first = pool.Rent(2048);
        var second = pool.Rent(2048);
        var third = pool.Rent(2048);

        Assert.Equal(2, factory.MaxLargeBlocks);
        Assert.Equal(64 * 1024, first.Memory.Length);
        Assert.Equal(64 * 1024, second.Memory.Length);
        Assert.Equal(16 * 1024, third.Memory.Length);
        Assert.Equal(2, factory.LargeBlocksOut);

        first.Dispose();
        Assert.Equal(1, factory.LargeBlocksOut);
        var fourth = pool.Rent(2048);
        Assert.Equal(64 * 1024, fourth.Memory.Length);

        second.Dispose();
        third.Dispose();
        fourth.Dispose();
        Assert.Equal(0, factory.LargeBlocksOut);
    }

    [Fact]
    public void LargeBlocks_OneBudgetForEveryPoolOfTheFactory()
    {
        var factory = new TransportMemoryPoolFactory(16 * 1024, 64 * 1024, 64 * 1024);
        using var entry = factory.Create();
        using var uplink = factory.Create();

        using var a = entry.Rent();
        using var b = uplink.Rent();

        Assert.Equal(64 * 1024, a.Memory.Length);
        Assert.Equal(16 * 1024, b.Memory.Length);
    }

    [Fact]
    public void LargeBlocks_AReusedOwner_CountsOnlyWhatItCarriesNow()
    {
        var factory = new TransportMemoryPoolFactory(16 * 1024, 64 * 1024, 64 * 1024);
        using var pool = factory.Create();
        var large = pool.Rent();
        var small = pool.Rent();
        large.Dispose();
        small.Dispose();

        // The owners come back in the order they were returned: the large one's owner now carries a block taken from
        // the budget again, the small one's a block of the block size (the budget is spent).
        var again = pool.Rent();
        var plain = pool.Rent();
        Assert.Equal(1, factory.LargeBlocksOut);
        plain.Dispose();
        Assert.Equal(1, factory.LargeBlocksOut);
        again.Dispose();
        Assert.Equal(0, factory.LargeBlocksOut);
    }

    [Fact]
    public void LargeBlocks_AHintAboveTheBlockSize_IsServedOutsideTheBudget()
    {
        var factory = new TransportMemoryPoolFactory(16 * 1024, 64 * 1024, 16 * 1024 * 1024);
        using var pool = factory.Create();

        using var big = pool.Rent(100_000);

        Assert.True(big.Memory.Length >= 100_000, $"{big.Memory.Length} bytes");
        Assert.Equal(0, factory.LargeBlocksOut);
    }

    [Theory]
    [InlineData(64 * 1024, 0)]
    [InlineData(16 * 1024, 16 * 1024 * 1024)]
    public void LargeBlocks_Off_WhenTheBudgetIsZeroOrTheSizeIsTheBlockSize(int largeSize, long largeMemory)
    {
        var factory = new TransportMemoryPoolFactory(16 * 1024, largeSize, largeMemory);
        using var pool = factory.Create();

        using var block = pool.Rent();

        Assert.Equal(0, factory.MaxLargeBlocks);
        Assert.Equal(16 * 1024, block.Memory.Length);
    }

    [Fact]
    public async Task LargeBlocks_RentedAndReturnedFromManyThreads_NeverMoreThanTheBudget_AndAllComeBack()
    {
        var factory = new TransportMemoryPoolFactory(16 * 1024, 64 * 1024, 4 * 64 * 1024);
        using var pool = factory.Create();
        var mostOut = 0;

        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                using var block = pool.Rent();
                var now = factory.LargeBlocksOut;
                int seen;
                while (now > (seen = Volatile.Read(ref mostOut)) && Interlocked.CompareExchange(ref mostOut, now, seen) != seen)
                {
                }
            }
        }));
        await Task.WhenAll(workers).DefaultTimeout();

        Assert.InRange(mostOut, 1, 4);
        Assert.Equal(0, factory.LargeBlocksOut);
    }
}
