namespace AotEvents.Http.Server;

internal enum ChunkStatus : byte
{
    NeedMore,
    Done,
    BadRequest,
    TooLarge,
    TrailersTooLarge,
}

/// <summary>
/// Incremental decoder of a chunked request body (RFC 9112 §7.1): chunk extensions are skipped, trailer fields are
/// checked for shape and dropped. Feed it whatever has arrived; it reports how much it consumed and keeps an
/// incomplete line (size line, CRLF, trailer) for the caller to present again with more bytes behind it.
/// </summary>
internal struct ChunkedDecoder
{
    /// <summary>Longest chunk-size line (with extensions) accepted.</summary>
    internal const int MaxSizeLineLength = 4096;

    private enum State : byte
    {
        Size,
        Data,
        DataEnd,
        Trailer,
        Done,
    }

    private State _state;
    private long _remaining;
    private int _trailerBytes;

    public ChunkStatus Decode(ReadOnlySpan<byte> input, ref BodyBuffer body, long maxBodyBytes, int maxTrailerBytes, out int consumed)
    {
        int p = 0;
        while (true)
        {
            switch (_state)
            {
                case State.Size:
                {
                    int lf = input[p..].IndexOf((byte)'\n');
                    if (lf < 0)
                    {
                        consumed = p;
                        return input.Length - p > MaxSizeLineLength ? ChunkStatus.BadRequest : ChunkStatus.NeedMore;
                    }
                    ReadOnlySpan<byte> line = input.Slice(p, lf);
                    if (!line.IsEmpty && line[^1] == (byte)'\r')
                    {
                        line = line[..^1];
                    }
                    long size = 0;
                    int i = 0;
                    for (; i < line.Length; i++)
                    {
                        int digit = HttpRequest.HexValue(line[i]);
                        if (digit < 0)
                        {
                            break;
                        }
                        size = (size << 4) | (uint)digit;
                        if (size > maxBodyBytes)
                        {
                            consumed = p;
                            return ChunkStatus.TooLarge;
                        }
                    }
                    if (i == 0)
                    {
                        consumed = p;
                        return ChunkStatus.BadRequest;
                    }
                    ReadOnlySpan<byte> rest = line[i..].TrimStart(" \t"u8);
                    if (!rest.IsEmpty && (rest[0] != (byte)';' || !HttpParser.IsValidFieldValue(rest)))
                    {
                        consumed = p;
                        return ChunkStatus.BadRequest;
                    }
                    if (body.Length + size > maxBodyBytes)
                    {
                        consumed = p;
                        return ChunkStatus.TooLarge;
                    }
                    p += lf + 1;
                    if (size == 0)
                    {
                        _state = State.Trailer;
                    }
                    else
                    {
                        _remaining = size;
                        _state = State.Data;
                    }
                    break;
                }
                case State.Data:
                {
                    int n = (int)Math.Min(_remaining, input.Length - p);
                    if (n == 0)
                    {
                        consumed = p;
                        return ChunkStatus.NeedMore;
                    }
                    body.Append(input.Slice(p, n));
                    p += n;
                    _remaining -= n;
                    if (_remaining == 0)
                    {
                        _state = State.DataEnd;
                    }
                    break;
                }
                case State.DataEnd:
                {
                    if (p >= input.Length)
                    {
                        consumed = p;
                        return ChunkStatus.NeedMore;
                    }
                    if (input[p] == (byte)'\n')
                    {
                        p += 1;
                    }
                    else if (input[p] == (byte)'\r')
                    {
                        if (p + 1 >= input.Length)
                        {
                            consumed = p;
                            return ChunkStatus.NeedMore;
                        }
                        if (input[p + 1] != (byte)'\n')
                        {
                            consumed = p;
                            return ChunkStatus.BadRequest;
                        }
                        p += 2;
                    }
                    else
                    {
                        consumed = p;
                        return ChunkStatus.BadRequest;
                    }
                    _state = State.Size;
                    break;
                }
                case State.Trailer:
                {
                    int lf = input[p..].IndexOf((byte)'\n');
                    if (lf < 0)
                    {
                        consumed = p;
                        return _trailerBytes + (input.Length - p) >= maxTrailerBytes ? ChunkStatus.TrailersTooLarge : ChunkStatus.NeedMore;
                    }
                    _trailerBytes += lf + 1;
                    if (_trailerBytes > maxTrailerBytes)
                    {
                        consumed = p;
                        return ChunkStatus.TrailersTooLarge;
                    }
                    ReadOnlySpan<byte> line = input.Slice(p, lf);
                    if (!line.IsEmpty && line[^1] == (byte)'\r')
                    {
                        line = line[..^1];
                    }
                    p += lf + 1;
                    if (line.IsEmpty)
                    {
                        _state = State.Done;
                        consumed = p;
                        return ChunkStatus.Done;
                    }
                    int colon = line.IndexOf((byte)':');
                    if (colon <= 0 || !HttpParser.IsToken(line[..colon]) || !HttpParser.IsValidFieldValue(line[(colon + 1)..]))
                    {
                        consumed = p;
                        return ChunkStatus.BadRequest;
                    }
                    break;
                }
                default:
                    consumed = p;
                    return ChunkStatus.Done;
            }
        }
    }
}

/// <summary>A growable body in pooled memory (for de-chunking).</summary>
internal struct BodyBuffer
{
    private readonly BufferPool _pool;
    private byte[]? _array;
    private int _length;

    public BodyBuffer(BufferPool pool)
    {
        _pool = pool;
        _array = null;
        _length = 0;
    }

    public readonly int Length => _length;

    public readonly byte[]? Array => _array;

    public readonly ReadOnlyMemory<byte> Memory => _array is null ? default : _array.AsMemory(0, _length);

    public void Append(ReadOnlySpan<byte> data)
    {
        if (_array is null || _array.Length - _length < data.Length)
        {
            int needed = checked(_length + data.Length);
            byte[] bigger = _pool.Rent(Math.Max(needed, _array is null ? BufferPool.BlockSize : Math.Min(_array.Length * 2, System.Array.MaxLength)));
            if (_array is not null)
            {
                _array.AsSpan(0, _length).CopyTo(bigger);
                _pool.Return(_array);
            }
            _array = bigger;
        }
        data.CopyTo(_array.AsSpan(_length));
        _length += data.Length;
    }

    /// <summary>Gives the array back to the pool (if any).</summary>
    public void Release()
    {
        if (_array is not null)
        {
            _pool.Return(_array);
            _array = null;
        }
        _length = 0;
    }
}
