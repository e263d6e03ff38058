using System.Buffers;
using Microsoft.Extensions.ObjectPool;

namespace AotEvents.Http.Server;

/// <summary>
/// The server's byte buffers: 4 KiB blocks (receive and send buffers of ordinary requests) from a bounded
/// <see cref="DefaultObjectPool{T}"/>; the rare larger ones (big heads or bodies) from <see cref="ArrayPool{T}.Shared"/>.
/// Counts what is out, so tests can check every path gives its buffers back.
/// </summary>
internal sealed class BufferPool
{
    internal const int BlockSize = 4096;

    private readonly DefaultObjectPool<byte[]> _blocks;
    private long _outstanding;

    public BufferPool(int maxRetainedBlocks)
    {
        _blocks = new DefaultObjectPool<byte[]>(new BlockPolicy(), maxRetainedBlocks);
    }

    /// <summary>Buffers rented and not yet returned.</summary>
    public long Outstanding => Volatile.Read(ref _outstanding);

    public byte[] RentBlock()
    {
        Interlocked.Increment(ref _outstanding);
        return _blocks.Get();
    }

    public byte[] Rent(int minimumLength)
    {
        if (minimumLength <= BlockSize)
        {
            return RentBlock();
        }
        Interlocked.Increment(ref _outstanding);
        return ArrayPool<byte>.Shared.Rent(minimumLength);
    }

    public void Return(byte[] buffer)
    {
        Interlocked.Decrement(ref _outstanding);
        // ArrayPool.Shared never hands out a 4096-byte array for a request above 4096, so the length says where it came from.
        if (buffer.Length == BlockSize)
        {
            _blocks.Return(buffer);
        }
        else
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private sealed class BlockPolicy : PooledObjectPolicy<byte[]>
    {
        public override byte[] Create() => GC.AllocateUninitializedArray<byte>(BlockSize);

        public override bool Return(byte[] obj) => true;
    }
}
