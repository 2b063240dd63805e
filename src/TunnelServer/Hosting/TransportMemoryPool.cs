using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Tunnel2.Server.Hosting;

/// <summary>
/// The memory pool Kestrel's socket transport takes its receive and send buffers from, with blocks of
/// <see cref="TunnelServerOptions.TransportBlockSize"/> bytes instead of Kestrel's 4 KiB, and larger ones
/// (<see cref="TunnelServerOptions.TransportLargeBlockSize"/>) while few are out. Kestrel receives into the rest of the
/// current block, so its block size bounds what one <c>recv</c> takes: an uplink carrying a 1 GiB download cost the
/// server 262,144 receive calls with 4 KiB blocks (docs/adr/0012-transport-block-size.md), and about 130,000 with
/// 16 KiB blocks, half of them filling the tail of a partly used block (docs/adr/0014-large-transport-blocks.md).
/// </summary>
/// <remarks>
/// Blocks are arrays from <see cref="ArrayPool{T}.Shared"/>, which bounds and trims what it keeps; the owner objects
/// that carry them are reused, so a rent allocates nothing once the server is warm. The socket transport pins a buffer only for the duration of a call on Linux, so
/// the blocks need not live on the pinned heap as Kestrel's do. Large blocks are shared by every pool of the factory
/// (Kestrel asks for one per listener) under one budget of bytes out at once: a few busy connections (an uplink, a
/// bulk transfer) get them, while ten thousand connections each trickling a request head, which hold one block each
/// until <c>RequestHeadersTimeout</c>, get the small ones once the budget is spent.
/// </remarks>
internal sealed class TransportMemoryPoolFactory(int blockSize, int largeBlockSize = 0, long largeBlockMemory = 0) : IMemoryPoolFactory<byte>
{
    private readonly LargeBlockBudget _large = new(Math.Max(largeBlockSize, blockSize), largeBlockSize > blockSize ? largeBlockMemory : 0);
    private int _created;

    public int BlockSize => blockSize;

    /// <summary>The size of a large block; <see cref="BlockSize"/> when there are none.</summary>
    public int LargeBlockSize => _large.Size;

    /// <summary>How many large blocks may be out at once (the budget of bytes divided by their size).</summary>
    public int MaxLargeBlocks => _large.Max;

    /// <summary>Large blocks rented and not yet returned, across every pool of this factory.</summary>
    public int LargeBlocksOut => _large.Out;

    /// <summary>Pools handed out so far (Kestrel creates one per listener).</summary>
    public int PoolsCreated => Volatile.Read(ref _created);

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        Interlocked.Increment(ref _created);
        return new TransportMemoryPool(blockSize, _large);
    }
}

/// <summary>How many large transport blocks may be out at once, and how many are.</summary>
internal sealed class LargeBlockBudget(int size, long memory)
{
    private int _out;

    public int Size { get; } = size;

    public int Max { get; } = (int)Math.Min(int.MaxValue, memory / size);

    public int Out => Volatile.Read(ref _out);

    public bool TryTake()
    {
        if (Max == 0 || Volatile.Read(ref _out) >= Max)
        {
            return false;
        }

        if (Interlocked.Increment(ref _out) <= Max)
        {
            return true;
        }

        Interlocked.Decrement(ref _out);
        return false;
    }

    public void Give() => Interlocked.Decrement(ref _out);
}

internal sealed class TransportMemoryPool(int blockSize, LargeBlockBudget? large = null) : MemoryPool<byte>
{
    /// <summary>Owner objects kept for reuse (their arrays go back to the shared pool): more than a busy server holds at once.</summary>
    private const int MaxPooledOwners = 1024;

    private readonly ConcurrentQueue<Block> _owners = new();
    private int _pooledOwners;

    /// <summary>The size the pipe asks for; a rent may give a large block instead, which a pipe uses whole.</summary>
    public override int MaxBufferSize => blockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        var fromBudget = minBufferSize <= blockSize && large is not null && large.TryTake();
        var array = ArrayPool<byte>.Shared.Rent(fromBudget ? large!.Size : Math.Max(minBufferSize, blockSize));
        if (_owners.TryDequeue(out var owner))
        {
            Interlocked.Decrement(ref _pooledOwners);
            owner.Attach(array, fromBudget);
            return owner;
        }

        return new Block(this, array, fromBudget);
    }

    protected override void Dispose(bool disposing)
    {
        // Blocks go back to the shared array pool one by one; there is nothing of the pool's own to release.
    }

    private void GiveBack() => large!.Give();

    private void ReturnOwner(Block owner)
    {
        if (Interlocked.Increment(ref _pooledOwners) <= MaxPooledOwners)
        {
            _owners.Enqueue(owner);
        }
        else
        {
            Interlocked.Decrement(ref _pooledOwners);
        }
    }

    /// <summary>
    /// One rented block. Reused after its dispose, as Kestrel reuses its own blocks: a pipe disposes each owner exactly
    /// once, when the segment holding it is released, and keeps no reference after that.
    /// </summary>
    private sealed class Block(TransportMemoryPool pool, byte[] array, bool fromBudget) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;
        private bool _fromBudget = fromBudget;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        public void Attach(byte[] array, bool fromBudget)
        {
            _fromBudget = fromBudget;
            Volatile.Write(ref _array, array);
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } array)
            {
                ArrayPool<byte>.Shared.Return(array);
                if (_fromBudget)
                {
                    pool.GiveBack();
                }

                pool.ReturnOwner(this);
            }
        }
    }
}
