using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// Which key positions (text tokens) a <see cref="RecordingAttentionProcessor"/> records: all of them, the same
/// positions for every batch row, or positions given per batch row (<c>[B, K]</c> int64, e.g. the [V] token and the
/// category word that follows it in each prompt).
/// </summary>
internal sealed class AttentionTokenSelection
{
    private readonly long[]? _shared;
    private readonly long[,]? _perRow;

    private AttentionTokenSelection(long[]? shared, long[,]? perRow)
    {
        _shared = shared;
        _perRow = perRow;
    }

    /// <summary>Records every key position (<c>K</c> = number of keys, 77 for CLIP prompts).</summary>
    public static AttentionTokenSelection All { get; } = new(null, null);

    /// <summary>Records the same key positions for every batch row.</summary>
    public static AttentionTokenSelection Positions(params int[] positions)
    {
        ArgumentNullException.ThrowIfNull(positions);
        if (positions.Length == 0) throw new ArgumentException("At least one token position is needed.", nameof(positions));
        if (positions.Any(p => p < 0)) throw new ArgumentOutOfRangeException(nameof(positions), "Token positions must be non-negative.");
        return new AttentionTokenSelection(positions.Select(p => (long)p).ToArray(), null);
    }

    /// <summary>Records key positions per batch row: <paramref name="tokenIndices"/> is <c>[B, K]</c> (any integer dtype,
    /// any device); row b of the batch records positions <c>tokenIndices[b, :]</c>.</summary>
    public static AttentionTokenSelection PerRow(Tensor tokenIndices)
    {
        ArgumentNullException.ThrowIfNull(tokenIndices);
        if (tokenIndices.dim() != 2 || tokenIndices.shape[1] == 0)
            throw new ArgumentException($"Token indices must be [B, K] with K >= 1, got [{string.Join(", ", tokenIndices.shape)}].", nameof(tokenIndices));
        if (tokenIndices.is_floating_point() || tokenIndices.dtype == ScalarType.Bool)
            throw new ArgumentException($"Token indices must be integers, got {tokenIndices.dtype}.", nameof(tokenIndices));
        using var cpu = tokenIndices.to_type(ScalarType.Int64).cpu();
        var values = cpu.data<long>().ToArray();
        int rows = (int)cpu.shape[0], cols = (int)cpu.shape[1];
        var table = new long[rows, cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                long v = values[r * cols + c];
                if (v < 0) throw new ArgumentOutOfRangeException(nameof(tokenIndices), $"Token index [{r}, {c}] is {v}; indices must be non-negative.");
                table[r, c] = v;
            }
        }
        return new AttentionTokenSelection(null, table);
    }

    /// <summary>Records key positions per batch row, given as an array <c>[B, K]</c>.</summary>
    public static AttentionTokenSelection PerRow(long[,] tokenIndices)
    {
        ArgumentNullException.ThrowIfNull(tokenIndices);
        using var t = tensor(tokenIndices);
        return PerRow(t);
    }

    /// <summary>True when every key position is recorded.</summary>
    public bool IsAll => _shared is null && _perRow is null;

    /// <summary>Number of recorded positions per row, or null for <see cref="All"/>.</summary>
    public int? Count => _shared?.Length ?? _perRow?.GetLength(1);

    /// <summary>Number of batch rows the selection is for, or null when it applies to any batch size.</summary>
    public int? Rows => _perRow?.GetLength(0);

    /// <summary>The recorded positions of batch row <paramref name="row"/> for a layer with <paramref name="keys"/> keys.</summary>
    public IReadOnlyList<long> PositionsOfRow(int row, int keys)
    {
        if (IsAll) return Enumerable.Range(0, keys).Select(i => (long)i).ToArray();
        if (_shared is not null) return _shared;
        return Enumerable.Range(0, _perRow!.GetLength(1)).Select(c => _perRow[row, c]).ToArray();
    }

    /// <summary>Picks the recorded columns of <paramref name="probabilities"/> <c>[B, heads, queries, keys]</c> →
    /// <c>[B, heads, queries, K]</c> (differentiable).</summary>
    internal Tensor Select(Tensor probabilities, string layerPath)
    {
        if (IsAll) return probabilities;
        long batch = probabilities.shape[0], keys = probabilities.shape[3];
        if (_shared is not null)
        {
            CheckRange(_shared.Max(), keys, layerPath);
            using var index = tensor(_shared, device: probabilities.device);
            return probabilities.index_select(-1, index);
        }
        if (_perRow!.GetLength(0) != batch)
            throw new ArgumentException($"Attention '{layerPath}': the token selection has {_perRow.GetLength(0)} rows but the batch has {batch}.");
        long max = 0;
        foreach (long v in _perRow) max = Math.Max(max, v);
        CheckRange(max, keys, layerPath);
        using var rows = tensor(_perRow, device: probabilities.device);
        using var expanded = rows.view(batch, 1, 1, _perRow.GetLength(1)).expand(batch, probabilities.shape[1], probabilities.shape[2], _perRow.GetLength(1));
        return probabilities.gather(-1, expanded);
    }

    private static void CheckRange(long max, long keys, string layerPath)
    {
        if (max >= keys)
            throw new ArgumentOutOfRangeException("tokenIndices", $"Attention '{layerPath}': token position {max} is outside the {keys} keys.");
    }
}
