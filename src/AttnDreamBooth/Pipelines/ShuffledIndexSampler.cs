namespace AttnDreamBooth.Pipelines;

/// <summary>
/// Draws indices 0..n−1 in epochs: each epoch is a fresh seeded permutation, as a shuffling data loader does. The
/// complete position (permutation, cursor, generator) is available as a <see cref="ShuffledIndexSamplerState"/> so a
/// resumed run continues with exactly the same indices.
/// </summary>
public sealed class ShuffledIndexSampler
{
    private readonly SeededRandom _random;
    private int[] _order;
    private int _position;

    /// <summary>Creates a sampler over <paramref name="count"/> items shuffled by a generator seeded with <paramref name="seed"/>.</summary>
    public ShuffledIndexSampler(int count, long seed)
        : this(count, new SeededRandom(seed))
    {
    }

    /// <summary>Creates a sampler over <paramref name="count"/> items shuffled by <paramref name="random"/> (owned from now on).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> ≤ 0.</exception>
    public ShuffledIndexSampler(int count, SeededRandom random)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentNullException.ThrowIfNull(random);
        _random = random;
        _order = [];
        Count = count;
    }

    private ShuffledIndexSampler(ShuffledIndexSamplerState state)
    {
        Count = state.Count;
        _random = SeededRandom.FromState(state.RandomState);
        _order = state.Order.ToArray();
        _position = state.Position;
    }

    /// <summary>Number of items.</summary>
    public int Count { get; }

    /// <summary>Completed epochs plus the current one (0 before the first draw).</summary>
    public long Epoch { get; private set; }

    /// <summary>The next index; a new permutation starts when the current one is used up.</summary>
    public int Next()
    {
        if (_position >= _order.Length)
        {
            _order = Enumerable.Range(0, Count).ToArray();
            _random.Shuffle(_order);
            _position = 0;
            Epoch++;
        }
        return _order[_position++];
    }

    /// <summary>The next <paramref name="batchSize"/> indices (a batch may span two epochs).</summary>
    public int[] NextBatch(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        var batch = new int[batchSize];
        for (int i = 0; i < batchSize; i++) batch[i] = Next();
        return batch;
    }

    /// <summary>A snapshot of the complete position (copies).</summary>
    public ShuffledIndexSamplerState GetState() => new(Count, _order.ToArray(), _position, Epoch, _random.GetState());

    /// <summary>Restores a sampler from <see cref="GetState"/>.</summary>
    /// <exception cref="ArgumentException">The state is inconsistent.</exception>
    public static ShuffledIndexSampler FromState(ShuffledIndexSamplerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Count <= 0) throw new ArgumentException($"Count must be positive; got {state.Count}.", nameof(state));
        ArgumentNullException.ThrowIfNull(state.Order);
        ArgumentNullException.ThrowIfNull(state.RandomState);
        if (state.Order.Count != 0 && (state.Order.Count != state.Count || !state.Order.Order().SequenceEqual(Enumerable.Range(0, state.Count))))
            throw new ArgumentException("Order must be empty or a permutation of 0..Count-1.", nameof(state));
        if (state.Position < 0 || state.Position > state.Order.Count)
            throw new ArgumentException($"Position {state.Position} is outside [0, {state.Order.Count}].", nameof(state));
        return new ShuffledIndexSampler(state) { Epoch = state.Epoch };
    }
}

/// <summary>The serialisable position of a <see cref="ShuffledIndexSampler"/>.</summary>
/// <param name="Count">Number of items.</param>
/// <param name="Order">The current permutation (empty before the first draw).</param>
/// <param name="Position">How many indices of <paramref name="Order"/> were drawn.</param>
/// <param name="Epoch">The epoch counter.</param>
/// <param name="RandomState">The shuffling generator's <see cref="SeededRandom.GetState"/>.</param>
public sealed record ShuffledIndexSamplerState(int Count, IReadOnlyList<int> Order, int Position, long Epoch, IReadOnlyList<ulong> RandomState);
