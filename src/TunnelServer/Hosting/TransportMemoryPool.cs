using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Tunnel2.Server.Hosting;

/// <summary>
/// The memory pool Kestrel's socket transport takes its receive and send buffers from, with blocks of
/// <see cref="TunnelServerOptions.TransportBlockSize"/> bytes instead of Kestrel's 4 KiB. Kestrel receives into the
/// rest of the current block, so its block size is the most one <c>recv</c> takes: an uplink carrying a 1 GiB download
/// cost the server 262,144 receive calls with 4 KiB blocks (docs/adr/0012-transport-block-size.md).
/// </summary>
/// <remarks>
/// Blocks are arrays from <see cref="ArrayPool{T}.Shared"/>, which bounds and trims what it keeps; the owner objects
/// that carry them are reused, so a rent allocates nothing once the server is warm. The socket transport pins a buffer only for the duration of a call on Linux, so
/// the blocks need not live on the pinned heap as Kestrel's do.
/// </remarks>
internal sealed class TransportMemoryPoolFactory(int blockSize) : IMemoryPoolFactory<byte>
{
    private int _created;

    public int BlockSize => blockSize;

    /// <summary>Pools handed out so far (Kestrel creates one per listener).</summary>
    public int PoolsCreated => Volatile.Read(ref _created);

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        Interlocked.Increment(ref _created);
        return new TransportMemoryPool(blockSize);
    }
}

internal sealed class TransportMemoryPool(int blockSize) : MemoryPool<byte>
{
    /// <summary>Owner objects kept for reuse (their arrays go back to the shared pool): more than a busy server holds at once.</summary>
    private const int MaxPooledOwners = 1024;

    private readonly ConcurrentQueue<Block> _owners = new();
    private int _pooledOwners;

    public override int MaxBufferSize => blockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        var array = ArrayPool<byte>.Shared.Rent(Math.Max(minBufferSize, blockSize));
        if (_owners.TryDequeue(out var owner))
        {
            Interlocked.Decrement(ref _pooledOwners);
            owner.Attach(array);
            return owner;
        }

        return new Block(this, array);
    }

    protected override void Dispose(bool disposing)
    {
        // Blocks go back to the shared array pool one by one; there is nothing of the pool's own to release.
    }

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
    private sealed class Block(TransportMemoryPool pool, byte[] array) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        public void Attach(byte[] array) => _array = array;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } array)
            {
                ArrayPool<byte>.Shared.Return(array);
                pool.ReturnOwner(this);
            }
        }
    }
}
