using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AotEvents.Http.Server.Transport;

/// <summary>
/// The few Linux calls the connection transport makes itself: epoll, eventfd, and non-blocking send/recv on a socket
/// the runtime opened (accept stays with <see cref="System.Net.Sockets.Socket"/>).
/// </summary>
internal static unsafe partial class LinuxSockets
{
    private const string Libc = "libc";

    internal const int EpollCloexec = 0x80000;
    internal const int EpollCtlAdd = 1;
    internal const int EpollCtlDel = 2;

    internal const uint EpollIn = 0x001;
    internal const uint EpollOut = 0x004;
    internal const uint EpollErr = 0x008;
    internal const uint EpollHup = 0x010;
    internal const uint EpollRdHup = 0x2000;
    internal const uint EpollEdgeTriggered = 1u << 31;

    internal const int EventFdCloexec = 0x80000;
    internal const int EventFdNonBlock = 0x800;

    /// <summary>MSG_NOSIGNAL: a send to a closed peer fails with EPIPE instead of raising SIGPIPE.</summary>
    internal const int MsgNoSignal = 0x4000;

    internal const int EIntr = 4;
    internal const int EAgain = 11;

    /// <summary>
    /// <c>struct epoll_event</c> is packed on x86-64 (12 bytes: the 64-bit data at offset 4) and naturally aligned
    /// elsewhere (16 bytes: data at offset 8). Events are read from a raw buffer with this stride.
    /// </summary>
    internal static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    internal static int EpollDataOffset => EpollEventSize - sizeof(ulong);

    [LibraryImport(Libc, EntryPoint = "epoll_create1", SetLastError = true)]
    internal static partial int EpollCreate(int flags);

    [LibraryImport(Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static partial int EpollCtl(int epfd, int op, int fd, byte* @event);

    [LibraryImport(Libc, EntryPoint = "epoll_wait", SetLastError = true)]
    internal static partial int EpollWait(int epfd, byte* events, int maxEvents, int timeoutMs);

    [LibraryImport(Libc, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int EventFd(uint initialValue, int flags);

    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "recv", SetLastError = true)]
    internal static partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport(Libc, EntryPoint = "send", SetLastError = true)]
    internal static partial nint Send(int fd, byte* buffer, nuint length, int flags);

    /// <summary>Writes one epoll_event (events, data) into <paramref name="destination"/>.</summary>
    internal static void WriteEpollEvent(byte* destination, uint events, ulong data)
    {
        *(uint*)destination = events;
        Unsafe.WriteUnaligned(destination + EpollDataOffset, data);
    }
}
