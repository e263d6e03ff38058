using System.Runtime.CompilerServices;

namespace AotEvents.S2.Tests;

internal static class TestAssemblySetup
{
    /// <summary>
    /// On a 2-core machine the thread pool starts with 2 workers and injects more slowly, so a burst of
    /// blocking test plumbing (the in-process S2 stand-in, waits) can stall continuations for up to a
    /// second and make timing assertions flaky. Start with enough workers.
    /// </summary>
    [ModuleInitializer]
    internal static void RaiseMinimumThreads() => ThreadPool.SetMinThreads(16, 16);
}
