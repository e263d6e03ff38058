using BenchmarkDotNet.Running;

namespace AotEvents.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/AotEvents.Benchmarks -- --filter '*'</c> runs everything
/// (a few minutes on 2 cores: every class uses <see cref="BenchConfig"/>'s short job).
/// <c>-- --quick</c> runs <see cref="QuickCheck"/> instead.
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args is ["--quick"])
        {
            QuickCheck.Run();
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new BenchConfig());
    }
}
