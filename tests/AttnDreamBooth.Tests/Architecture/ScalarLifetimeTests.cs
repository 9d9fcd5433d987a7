using System.Runtime.CompilerServices;
using AttnDreamBooth.IO;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Architecture;

/// <summary>
/// No code of ours hands libtorch a Scalar that the garbage collector may finalize during the call (see
/// <see cref="KeptScalars"/>): the IL scan finds none in the library, the Shapes package or the CLI, and finds each
/// kind in <see cref="ScalarLifetimeSamples"/>; a kept scalar survives a full collection that frees a bare one.
/// </summary>
public sealed class ScalarLifetimeTests
{
    private static readonly Lazy<HashSet<string>> UnsafeTorchSharp =
        new(() => ScalarLifetimeScan.UnsafeTorchSharpMethods(typeof(torch).Assembly.Location));

    public static TheoryData<string> Assemblies => new()
    {
        typeof(SafetensorsFile).Assembly.Location,
        typeof(AttnDreamBooth.Shapes.ShapesWorld).Assembly.Location,
        typeof(AttnDreamBooth.Cli.CliApp).Assembly.Location,
    };

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void EveryScalarHandedToLibtorchIsKeptOrDisposed(string assembly)
    {
        var violations = ScalarLifetimeScan.Violations(assembly, UnsafeTorchSharp.Value);
        Assert.True(violations.Count == 0,
            $"{Path.GetFileName(assembly)}: {violations.Count} call(s) hand libtorch a Scalar nothing keeps alive "
            + "(use Kept(v) for a scalar operand and One as the alpha of add):\n" + string.Join("\n", violations));
    }

    /// <summary>The tests run in parallel, so their own tensor code is exposed to the same collections: CI saw
    /// <c>add</c> fail with "Expected false to be true" from <c>c10::Scalar::toFloat</c> in a scheduler test.</summary>
    [Fact]
    public void TestCodeHandsLibtorchNoTemporaryScalarEither()
    {
        var violations = ScalarLifetimeScan.Violations(typeof(ScalarLifetimeTests).Assembly.Location, UnsafeTorchSharp.Value,
            exceptTypePrefix: typeof(ScalarLifetimeSamples).FullName!);
        Assert.True(violations.Count == 0,
            $"the tests: {violations.Count} call(s) hand libtorch a Scalar nothing keeps alive "
            + "(use Kept(v) for a scalar operand and One as the alpha of add):\n" + string.Join("\n", violations));
    }

    [Fact]
    public void TheScanFindsEachKindOfTemporaryScalar()
    {
        var found = ScalarLifetimeScan.Violations(typeof(ScalarLifetimeTests).Assembly.Location, UnsafeTorchSharp.Value,
            typeof(ScalarLifetimeSamples).FullName!);
        string Of(string method) => string.Join(" | ", found.Where(v => v.Contains($"::{method}:")).Select(v => v[(v.IndexOf(": ") + 2)..]));

        Assert.Equal("converts Single to Scalar implicitly for Tensor::mul(Scalar)", Of(nameof(ScalarLifetimeSamples.Implicit)));
        Assert.Equal("calls Tensor::add(Tensor)", Of(nameof(ScalarLifetimeSamples.DefaultAlpha)));
        Assert.Equal("calls Tensor::op_Addition(Tensor, Tensor)", Of(nameof(ScalarLifetimeSamples.Operator)));
        Assert.Equal("calls Tensor::square()", Of(nameof(ScalarLifetimeSamples.Square)));
        Assert.Equal("creates 1 Scalar(s) but disposes 0", Of(nameof(ScalarLifetimeSamples.Undisposed)));
        Assert.Equal("uses nn::LeakyReLU, a module whose forward passes a temporary Scalar", Of(nameof(ScalarLifetimeSamples.ModuleWithTemporaries)));
        Assert.Equal("", Of(nameof(ScalarLifetimeSamples.Disposed)));
        Assert.Equal("", Of(nameof(ScalarLifetimeSamples.KeptOperands)));
        Assert.Equal("creates 1 Scalar(s) but disposes 0", Of(nameof(ScalarLifetimeSamples.Bare)));
        Assert.Contains(found, v => v.StartsWith("ScalarLifetimeTests.cs:", StringComparison.Ordinal));
    }

    [Fact]
    public void AKeptScalarSurvivesACollectionThatFinalizesABareOne()
    {
        // On a thread of its own: the ring is per thread, and dies with it.
        var (keptAlive, bareAlive) = RunOnFreshThread(() =>
        {
            var kept = Track(() => Kept(0.25f));
            var bare = Track(ScalarLifetimeSamples.Bare);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            return (kept.IsAlive, bare.IsAlive);
        });
        Assert.False(bareAlive);
        Assert.True(keptAlive);
    }

    [Fact]
    public void TheRingDisposesAScalarOnlyAfterCapacityNewerOnes()
    {
        var (first, second) = RunOnFreshThread(() =>
        {
            var a = Kept(1.5);
            var b = Kept(2.5);
            for (int i = 0; i < Capacity - 2; i++) Kept(i);
            bool aAliveAtCapacity = Usable(a);
            Kept(7);
            return (aAliveAtCapacity && !Usable(a), Usable(b));
        });
        Assert.True(first, "the oldest scalar is usable until the ring wraps, and disposed when it does");
        Assert.True(second, "the second-oldest scalar is still usable");
    }

    [Fact]
    public void KeptScalarsGiveTheSameResultsAsImplicitOnes()
    {
        using var scope = NewDisposeScope();
        var x = torch.linspace(-3, 3, 13, dtype: ScalarType.Float64);
        var ints = torch.arange(Kept(0), Kept(7), Kept(1));
        // What an implicit conversion makes (ToScalar of the same value), disposed here instead of by the finalizer.
        using var single = 0.1f.ToScalar();
        using var dbl = 0.1.ToScalar();
        using var intOne = 1.ToScalar();
        Assert.True(x.mul(Kept(0.1f)).eq(x.mul(single)).all().item<bool>());
        Assert.True(x.mul(Kept(0.1)).eq(x.mul(dbl)).all().item<bool>());
        Assert.False(x.mul(Kept(0.1f)).eq(x.mul(Kept(0.1))).all().item<bool>());
        Assert.Equal(ScalarType.Int64, ints.div(Kept(2), RoundingMode.floor).dtype);
        Assert.True(x.add(x.flip(0), One).eq(x.add(x.flip(0), intOne)).all().item<bool>());
    }

    private static bool Usable(Scalar s)
    {
        try { _ = s.Type; return true; }
        catch (InvalidOperationException) { return false; }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference Track(Func<Scalar> create) => new(create());

    private static T RunOnFreshThread<T>(Func<T> work)
    {
        T result = default!;
        var thread = new Thread(() => result = work());
        thread.Start();
        thread.Join();
        return result;
    }
}

/// <summary>Compiled only for <see cref="ScalarLifetimeTests.TheScanFindsEachKindOfTemporaryScalar"/> to read.</summary>
internal static class ScalarLifetimeSamples
{
    internal static Tensor Implicit(Tensor x) => x.mul(0.5f);

    internal static Tensor DefaultAlpha(Tensor a, Tensor b) => a.add(b);

    internal static Tensor Operator(Tensor a, Tensor b) => a + b;

    internal static Tensor Square(Tensor x) => x.square();

    internal static Tensor Undisposed(Tensor x)
    {
        var s = 2.ToScalar();
        return x.mul(s);
    }

    internal static Tensor ModuleWithTemporaries(Tensor x) => nn.LeakyReLU().call(x);

    internal static Tensor Disposed(Tensor x)
    {
        using var s = 2.ToScalar();
        return x.mul(s);
    }

    internal static Tensor KeptOperands(Tensor a, Tensor b) => a.mul(Kept(0.5f)).add(b, One);

    // For AKeptScalarSurvivesACollectionThatFinalizesABareOne: a Scalar left to the finalizer (never handed to libtorch).
    internal static Scalar Bare() => 0.25f.ToScalar();
}
