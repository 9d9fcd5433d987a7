namespace AttnDreamBooth.Shapes;

/// <summary>
/// The world's pseudo-random generator: xoshiro256** seeded through SplitMix64. Every render, caption and scene of the
/// world is a function of its draws, and the shipped model was pretrained on those pixels, so the sequence is part of the
/// world's definition: it belongs to this package and must never change (<c>WorldRandomTests</c> pin it). Not
/// thread-safe; not for cryptography.
/// </summary>
internal sealed class WorldRandom
{
    private ulong _a, _b, _c, _d;

    /// <summary>A generator whose sequence is fixed by <paramref name="seed"/>.</summary>
    public WorldRandom(long seed)
    {
        ulong x = unchecked((ulong)seed);
        _a = NextSplitMix(ref x);
        _b = NextSplitMix(ref x);
        _c = NextSplitMix(ref x);
        _d = NextSplitMix(ref x);
    }

    /// <summary>64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_b * 5, 7) * 9;
        ulong shifted = _b << 17;
        _c ^= _a;
        _d ^= _b;
        _b ^= _c;
        _a ^= _d;
        _c ^= shifted;
        _d = ulong.RotateLeft(_d, 45);
        return result;
    }

    /// <summary>A uniform double in [0, 1) from the top 53 bits of one draw.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A uniform double in [<paramref name="min"/>, <paramref name="max"/>).</summary>
    public double NextDouble(double min, double max) => min + (max - min) * NextDouble();

    /// <summary>A uniform integer in [0, <paramref name="maxExclusive"/>), unbiased (draws below 2^64 mod the bound are
    /// drawn again).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxExclusive"/> ≤ 0.</exception>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        ulong bound = (ulong)maxExclusive;
        ulong rejectBelow = (0UL - bound) % bound;
        ulong draw;
        do draw = NextUInt64(); while (draw < rejectBelow);
        return (int)(draw % bound);
    }

    /// <summary>True with probability <paramref name="p"/>; one draw whatever the outcome.</summary>
    public bool NextBool(double p) => NextDouble() < p;

    private static ulong NextSplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
