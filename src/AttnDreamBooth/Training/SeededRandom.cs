namespace AttnDreamBooth.Training;

/// <summary>
/// A small, fast pseudo-random generator (xoshiro256**, seeded through SplitMix64) whose whole state is four
/// 64-bit words, so it can be saved in a checkpoint and restored to continue the exact same sequence. Its output is
/// fixed by this implementation (it does not depend on the .NET version, unlike <see cref="Random"/>'s), which keeps
/// augmentations and data order reproducible across machines. Not thread-safe; not for cryptography.
/// </summary>
internal sealed class SeededRandom
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Creates a generator from a seed; equal seeds give equal sequences.</summary>
    public SeededRandom(long seed)
    {
        ulong x = unchecked((ulong)seed);
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    private SeededRandom(ulong s0, ulong s1, ulong s2, ulong s3)
    {
        (_s0, _s1, _s2, _s3) = (s0, s1, s2, s3);
    }

    /// <summary>Restores a generator from <see cref="GetState"/>'s four words.</summary>
    /// <exception cref="ArgumentException">Not four words, or all zero (not a state xoshiro can reach).</exception>
    public static SeededRandom FromState(IReadOnlyList<ulong> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Count != 4) throw new ArgumentException($"A SeededRandom state has 4 words; got {state.Count}.", nameof(state));
        if (state.All(w => w == 0)) throw new ArgumentException("An all-zero SeededRandom state is invalid.", nameof(state));
        return new SeededRandom(state[0], state[1], state[2], state[3]);
    }

    /// <summary>The current state (a copy): restoring it with <see cref="FromState"/> continues the same sequence.</summary>
    public ulong[] GetState() => [_s0, _s1, _s2, _s3];

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A uniform double in [<paramref name="min"/>, <paramref name="max"/>).</summary>
    public double NextDouble(double min, double max) => min + (max - min) * NextDouble();

    /// <summary>A uniform integer in [0, <paramref name="maxExclusive"/>) without modulo bias.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxExclusive"/> ≤ 0.</exception>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        // Values below 2^64 mod bound are rejected, so the accepted range is a whole number of copies of [0, bound).
        ulong bound = (ulong)maxExclusive;
        ulong threshold = (0UL - bound) % bound;
        ulong r;
        do r = NextUInt64(); while (r < threshold);
        return (int)(r % bound);
    }

    /// <summary>Whether an event of probability <paramref name="p"/> happens (always draws one number).</summary>
    public bool NextBool(double p) => NextDouble() < p;

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher–Yates).</summary>
    public void Shuffle<T>(IList<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A new generator seeded from this one: an independent stream for a sub-task.</summary>
    public SeededRandom Split() => new(unchecked((long)NextUInt64()));

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
