using Tunnel2.Server.Hosting;

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
}
