using System.Net;
using System.Net.Sockets;
using System.Text;
using AotEvents.Http.Server.Transport;

namespace AotEvents.Http.Tests;

/// <summary>
/// The connection transport on its own: real loopback TCP pairs, the accepted end wrapped in a
/// <see cref="ConnectionSocket"/> on a real <see cref="EpollLoop"/>.
/// </summary>
public sealed class ConnectionSocketTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly EpollLoop _loop = new("test-loop", log: null);
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public ConnectionSocketTests()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
    }

    public void Dispose()
    {
        _listener.Dispose();
        _loop.Dispose();
    }

    private async Task<(Socket Client, ConnectionSocket Server)> ConnectAsync()
    {
        Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Task<Socket> accept = _listener.AcceptAsync();
        await client.ConnectAsync(_listener.LocalEndPoint!);
        return (client, new ConnectionSocket(await accept, _loop));
    }

    [Fact]
    public async Task A_receive_after_the_socket_drained_waits_for_the_next_bytes()
    {
        (Socket client, ConnectionSocket server) = await ConnectAsync();
        using (client)
        using (server)
        {
            await client.SendAsync("abc"u8.ToArray());
            byte[] buffer = new byte[64];
            Assert.Equal(3, await server.ReceiveAsync(buffer).AsTask().WaitAsync(Patience));
            Assert.Equal(-1, server.TryReceive(buffer)); // drained: no syscall needed to know

            ValueTask<int> pending = server.ReceiveAsync(buffer);
            await Task.Delay(100);
            Assert.False(pending.IsCompleted);

            await client.SendAsync("de"u8.ToArray());
            Assert.Equal(2, await pending.AsTask().WaitAsync(Patience));
            Assert.Equal("de", Encoding.ASCII.GetString(buffer, 0, 2));
        }
    }

    [Fact]
    public async Task Waiting_for_input_completes_on_data_and_on_the_peer_closing()
    {
        (Socket client, ConnectionSocket server) = await ConnectAsync();
        using (client)
        using (server)
        {
            byte[] buffer = new byte[64];
            Assert.Equal(-1, server.TryReceive(buffer)); // nothing sent yet

            ValueTask wait = server.WaitReadableAsync();
            Assert.False(wait.IsCompleted);
            await client.SendAsync("x"u8.ToArray());
            await wait.AsTask().WaitAsync(Patience);
            Assert.Equal(1, server.TryReceive(buffer));

            wait = server.WaitReadableAsync();
            Assert.False(wait.IsCompleted);
            client.Shutdown(SocketShutdown.Send);
            await wait.AsTask().WaitAsync(Patience);
            Assert.Equal(0, server.TryReceive(buffer));
        }
    }

    [Fact]
    public async Task A_send_larger_than_the_socket_buffers_waits_for_the_reader_and_arrives_whole()
    {
        (Socket client, ConnectionSocket server) = await ConnectAsync();
        using (client)
        using (server)
        {
            byte[] data = new byte[16 * 1024 * 1024];
            new Random(42).NextBytes(data);
            ValueTask send = server.SendAsync(data);
            await Task.Delay(100);
            Assert.False(send.IsCompleted); // the kernel's buffers are far smaller: it must be waiting

            byte[] received = new byte[data.Length];
            int total = 0;
            while (total < received.Length)
            {
                int n = await client.ReceiveAsync(received.AsMemory(total));
                Assert.True(n > 0);
                total += n;
            }
            await send.AsTask().WaitAsync(Patience);
            Assert.True(received.AsSpan().SequenceEqual(data));
        }
    }

    [Fact]
    public async Task Abort_wakes_a_blocked_send_with_an_error_and_resets_the_connection()
    {
        (Socket client, ConnectionSocket server) = await ConnectAsync();
        using (client)
        {
            ValueTask send = server.SendAsync(new byte[16 * 1024 * 1024]);
            await Task.Delay(100);
            Assert.False(send.IsCompleted);

            server.Abort();
            await Assert.ThrowsAsync<SocketException>(() => send.AsTask().WaitAsync(Patience));
            server.Dispose();

            // The client sees the connection end (reset, or the end after what was already in flight).
            byte[] buffer = new byte[64 * 1024];
            SocketError end = SocketError.Success;
            try
            {
                while (await client.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(Patience) > 0)
                {
                }
            }
            catch (SocketException ex)
            {
                end = ex.SocketErrorCode;
            }
            Assert.Equal(SocketError.ConnectionReset, end);
        }
    }

    [Fact]
    public async Task Shutting_down_the_receive_side_ends_a_pending_receive()
    {
        (Socket client, ConnectionSocket server) = await ConnectAsync();
        using (client)
        using (server)
        {
            byte[] buffer = new byte[64];
            ValueTask<int> pending = server.ReceiveAsync(buffer);
            await Task.Delay(50);
            Assert.False(pending.IsCompleted);

            server.Shutdown(SocketShutdown.Receive); // what the server's timeout sweep does, from another thread
            Assert.Equal(0, await pending.AsTask().WaitAsync(Patience));
        }
    }

    [Fact]
    public async Task Disposing_fails_a_pending_receive_instead_of_leaving_it_hanging()
    {
        (Socket client, ConnectionSocket server) = await ConnectAsync();
        using (client)
        {
            ValueTask<int> pending = server.ReceiveAsync(new byte[64]);
            await Task.Delay(50);
            Assert.False(pending.IsCompleted);

            server.Dispose();
            await Assert.ThrowsAsync<ObjectDisposedException>(() => pending.AsTask().WaitAsync(Patience));
        }
    }

    [Fact]
    public async Task Sockets_closed_and_opened_in_turn_never_see_each_others_reports()
    {
        // Slots are reused as sockets come and go; every socket must get exactly its own bytes and wake-ups.
        for (int round = 0; round < 200; round++)
        {
            (Socket client, ConnectionSocket server) = await ConnectAsync();
            using (client)
            using (server)
            {
                byte[] buffer = new byte[16];
                ValueTask<int> pending = server.ReceiveAsync(buffer);
                byte[] message = BitConverter.GetBytes(round);
                await client.SendAsync(message);
                Assert.Equal(4, await pending.AsTask().WaitAsync(Patience));
                Assert.Equal(round, BitConverter.ToInt32(buffer));
                await server.SendAsync(message);
                Assert.Equal(4, await client.ReceiveAsync(buffer));
                Assert.Equal(round, BitConverter.ToInt32(buffer));
            }
        }
    }
}
