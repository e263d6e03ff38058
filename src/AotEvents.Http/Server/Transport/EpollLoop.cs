using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AotEvents.Http.Server.Transport;

/// <summary>
/// One thread waiting on one edge-triggered epoll set for the server's connections. Each socket is registered once
/// for input, output and hang-up; a report bumps the socket's <see cref="Readiness"/> and resumes its waiter right
/// here, on this thread (as nginx's event loop does), so handler code resumed by a receive must not block.
/// <para>
/// The epoll data word is a slot in a table plus a generation, so a report read in the same batch as its socket's
/// close (and the slot's reuse) is recognised as stale and dropped.
/// </para>
/// </summary>
internal sealed unsafe class EpollLoop : IDisposable
{
    private const int BatchSize = 256;
    private const ulong WakeToken = ulong.MaxValue;
    private const uint SocketEvents =
        LinuxSockets.EpollIn | LinuxSockets.EpollOut | LinuxSockets.EpollRdHup | LinuxSockets.EpollEdgeTriggered;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly Action<string>? _log;
    private readonly SlotTable<ConnectionSocket> _sockets = new();
    private int _generation;
    private volatile bool _stopping;

    internal EpollLoop(string name, Action<string>? log)
    {
        _log = log;
        _epoll = LinuxSockets.EpollCreate(LinuxSockets.EpollCloexec);
        if (_epoll < 0)
        {
            throw LastError("epoll_create1");
        }
        _wake = LinuxSockets.EventFd(0, LinuxSockets.EventFdCloexec | LinuxSockets.EventFdNonBlock);
        if (_wake < 0)
        {
            SocketException error = LastError("eventfd");
            LinuxSockets.Close(_epoll);
            throw error;
        }
        byte* registration = stackalloc byte[16];
        LinuxSockets.WriteEpollEvent(registration, LinuxSockets.EpollIn, WakeToken);
        if (LinuxSockets.EpollCtl(_epoll, LinuxSockets.EpollCtlAdd, _wake, registration) != 0)
        {
            SocketException error = LastError("epoll_ctl");
            LinuxSockets.Close(_wake);
            LinuxSockets.Close(_epoll);
            throw error;
        }
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    internal void Register(ConnectionSocket socket, int fd)
    {
        int slot = _sockets.Add(socket);
        // The generation tells this socket's reports from those of an earlier socket in the same slot; 0 is never
        // used, so a token not yet set never matches.
        uint generation = (uint)Interlocked.Increment(ref _generation);
        if (generation == 0)
        {
            generation = (uint)Interlocked.Increment(ref _generation);
        }
        ulong token = (ulong)generation << 32 | (uint)slot;
        socket.Token = token; // before epoll_ctl: no report for it can come earlier
        byte* registration = stackalloc byte[16];
        LinuxSockets.WriteEpollEvent(registration, SocketEvents, token);
        if (LinuxSockets.EpollCtl(_epoll, LinuxSockets.EpollCtlAdd, fd, registration) != 0)
        {
            SocketException error = LastError("epoll_ctl");
            ReleaseSlot(socket);
            throw error;
        }
    }

    /// <summary>Before the descriptor closes: no more reports for it, and its slot is free again.</summary>
    internal void Unregister(ConnectionSocket socket, int fd)
    {
        // Failure means the descriptor is already gone, which also removed it from the set.
        LinuxSockets.EpollCtl(_epoll, LinuxSockets.EpollCtlDel, fd, null);
        ReleaseSlot(socket);
    }

    private void ReleaseSlot(ConnectionSocket socket) => _sockets.Remove((int)(uint)socket.Token, socket);

    private void Run()
    {
        int stride = LinuxSockets.EpollEventSize;
        int dataOffset = LinuxSockets.EpollDataOffset;
        byte* events = (byte*)NativeMemory.Alloc((nuint)(BatchSize * stride));
        try
        {
            while (true)
            {
                int count = LinuxSockets.EpollWait(_epoll, events, BatchSize, -1);
                if (count < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LinuxSockets.EIntr)
                    {
                        continue;
                    }
                    if (_stopping)
                    {
                        return; // disposed from a continuation running on this thread
                    }
                    _log?.Invoke($"HTTP event loop stopped: epoll_wait failed (errno {errno})");
                    return;
                }
                ConnectionSocket?[] sockets = _sockets.Items;
                for (int i = 0; i < count; i++)
                {
                    byte* entry = events + (i * stride);
                    ulong token = Unsafe.ReadUnaligned<ulong>(entry + dataOffset);
                    if (token == WakeToken)
                    {
                        if (_stopping)
                        {
                            return;
                        }
                        continue;
                    }
                    int slot = (int)(uint)token;
                    if (slot >= sockets.Length)
                    {
                        sockets = _sockets.Items; // grown since this batch began
                    }
                    ConnectionSocket? socket = Volatile.Read(ref sockets[slot]);
                    if (socket is null || socket.Token != token)
                    {
                        continue; // closed (and maybe replaced) after the kernel queued this report
                    }
                    try
                    {
                        socket.OnEvents(*(uint*)entry);
                    }
                    catch (Exception ex)
                    {
                        // Continuations resumed here catch their own errors; this is a last guard for the loop thread.
                        _log?.Invoke("HTTP event loop: a resumed connection threw: " + ex);
                    }
                }
            }
        }
        finally
        {
            NativeMemory.Free(events);
        }
    }

    /// <summary>Stops the thread (after the server's connections are closed) and closes the descriptors.</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }
        _stopping = true;
        ulong one = 1;
        LinuxSockets.Write(_wake, (byte*)&one, sizeof(ulong));
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }
        LinuxSockets.Close(_wake);
        LinuxSockets.Close(_epoll);
    }

    private static SocketException LastError(string call)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new SocketException((int)SocketError.SocketError, $"{call} failed (errno {errno})");
    }
}
