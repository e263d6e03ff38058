namespace AotEvents.S2.Transport;

/// <summary>The body of one response, read through its connection (asynchronous reads only).</summary>
internal sealed class S2HttpBodyStream(S2HttpConnection connection) : Stream
{
    private S2HttpConnection? _connection = connection;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        S2HttpConnection connection = _connection ?? throw new ObjectDisposedException(nameof(S2HttpBodyStream));
        return connection.ReadBodyAsync(buffer, cancellationToken);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("the body is read asynchronously");

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        _connection = null; // the connection may serve the next request now
        base.Dispose(disposing);
    }
}
