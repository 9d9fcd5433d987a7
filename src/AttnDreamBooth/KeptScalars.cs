using TorchSharp;

namespace AttnDreamBooth;

/// <summary>
/// Scalar operands for tensor operations that stay alive until libtorch has read them. Use <c>Kept(v)</c> wherever
/// TorchSharp takes a <see cref="Scalar"/> (<c>x.mul(Kept(0.5f))</c>), and pass <see cref="One"/> as the alpha of
/// <c>add</c>/<c>sub</c>.
/// </summary>
/// <remarks>
/// Why: TorchSharp frees a Scalar's native value in its finalizer, and a temporary one (an implicit conversion such as
/// <c>x.mul(0.5f)</c>, or the <c>1</c> that <c>Tensor.add(Tensor)</c> passes as alpha) is unreachable as soon as its
/// handle has been read. A garbage collection started by another thread during the native call can then finalize it
/// before libtorch reads the value: CI saw <c>add</c> fail with "Expected false to be true" from
/// <c>c10::Scalar::toHalf</c> (the freed value's type tag overwritten). <c>Kept</c> roots each Scalar in a per-thread
/// ring of the last <see cref="Capacity"/> ones and disposes it on the calling thread when the ring wraps: a Scalar is
/// consumed by a call on the thread that created it, and no expression creates that many scalars before its call runs.
/// The architecture test <c>ScalarLifetimeTests</c> reads the IL and rejects any other way of handing libtorch a Scalar.
/// </remarks>
public static class KeptScalars
{
    /// <summary>How many scalars a thread keeps alive at once.</summary>
    internal const int Capacity = 64;

    /// <summary>The integer 1, alive for the whole process (the alpha of an unscaled <c>add</c> or <c>sub</c>).</summary>
    public static readonly Scalar One = 1.ToScalar();

    [ThreadStatic] private static Scalar?[]? _ring;
    [ThreadStatic] private static int _next;

    /// <summary>A scalar holding <paramref name="value"/>, kept alive on this thread until libtorch has read it.</summary>
    public static Scalar Kept(double value) => Keep(value.ToScalar());

    /// <inheritdoc cref="Kept(double)"/>
    public static Scalar Kept(float value) => Keep(value.ToScalar());

    /// <inheritdoc cref="Kept(double)"/>
    public static Scalar Kept(long value) => Keep(value.ToScalar());

    /// <inheritdoc cref="Kept(double)"/>
    public static Scalar Kept(int value) => Keep(value.ToScalar());

    /// <inheritdoc cref="Kept(double)"/>
    public static Scalar Kept(byte value) => Keep(value.ToScalar());

    private static Scalar Keep(Scalar scalar)
    {
        var ring = _ring ??= new Scalar?[Capacity];
        ring[_next]?.Dispose();
        ring[_next] = scalar;
        _next = (_next + 1) % Capacity;
        return scalar;
    }
}
