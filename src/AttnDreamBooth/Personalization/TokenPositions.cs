using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Locates the token positions the regularization compares in tokenized prompts: the concept token [V] (by its
/// id) and the category token, i.e. the first sub-token of the category word, located by id in each row. Positions
/// are per batch row because prompts of one batch may differ.
/// </summary>
internal static class TokenPositions
{
    /// <summary>
    /// The first position of <paramref name="tokenId"/> in each row of <paramref name="inputIds"/> ([B, T] integer)
    /// as an int64 tensor [B] on the CPU.
    /// </summary>
    /// <exception cref="ArgumentException">The ids are not a 2-D integer tensor, or a row does not contain the token.</exception>
    public static Tensor FindFirst(Tensor inputIds, long tokenId)
    {
        var rows = ToRows(inputIds);
        var result = new long[rows.Length];
        for (int b = 0; b < rows.Length; b++)
        {
            int position = Array.IndexOf(rows[b], tokenId);
            if (position < 0)
                throw new ArgumentException($"Token id {tokenId} does not occur in batch row {b} of the input ids.", nameof(inputIds));
            result[b] = position;
        }
        return tensor(result, ScalarType.Int64);
    }

    /// <summary>
    /// The category token's position in each row: the first occurrence of <paramref name="categoryTokenId"/> after
    /// the row's [V] position (with the default template "a photo of a {token} {category}" that is [V] + 1); if the
    /// template puts the category before [V], the nearest occurrence before it. Returns int64 [B] on the CPU.
    /// </summary>
    /// <param name="inputIds">Token ids [B, T] (integer).</param>
    /// <param name="conceptPositions">The [V] position of each row, integer [B].</param>
    /// <param name="categoryTokenId">The id of the category word's first sub-token (its ids without BOS/EOS, first one).</param>
    /// <exception cref="ArgumentException">Shapes don't match, a [V] position is out of range, or a row lacks the category token.</exception>
    public static Tensor FindCategory(Tensor inputIds, Tensor conceptPositions, long categoryTokenId)
    {
        var rows = ToRows(inputIds);
        ArgumentNullException.ThrowIfNull(conceptPositions);
        if (conceptPositions.dim() != 1 || conceptPositions.shape[0] != rows.Length || conceptPositions.is_floating_point())
            throw new ArgumentException($"The [V] positions must be an integer tensor of shape [{rows.Length}]; got {conceptPositions.dtype} [{string.Join(", ", conceptPositions.shape)}].", nameof(conceptPositions));
        var concept = conceptPositions.to_type(ScalarType.Int64).cpu().data<long>().ToArray();
        var result = new long[rows.Length];
        for (int b = 0; b < rows.Length; b++) result[b] = FindCategory(rows[b], concept[b], categoryTokenId, b);
        return tensor(result, ScalarType.Int64);
    }

    /// <summary>The category position in one row of ids (see <see cref="FindCategory(Tensor, Tensor, long)"/>).</summary>
    public static int FindCategory(IReadOnlyList<long> ids, int conceptPosition, long categoryTokenId)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return (int)FindCategory(ids.ToArray(), conceptPosition, categoryTokenId, 0);
    }

    private static long FindCategory(long[] row, long conceptPosition, long categoryTokenId, int b)
    {
        if (conceptPosition < 0 || conceptPosition >= row.Length)
            throw new ArgumentException($"The [V] position {conceptPosition} of batch row {b} is outside [0, {row.Length}).", nameof(conceptPosition));
        for (long i = conceptPosition + 1; i < row.Length; i++)
            if (row[i] == categoryTokenId) return i;
        for (long i = conceptPosition - 1; i >= 0; i--)
            if (row[i] == categoryTokenId) return i;
        throw new ArgumentException($"The category token id {categoryTokenId} does not occur in batch row {b}; the prompt must contain the category word.", nameof(categoryTokenId));
    }

    private static long[][] ToRows(Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2 || inputIds.is_floating_point() || inputIds.dtype == ScalarType.Bool)
            throw new ArgumentException($"Input ids must be an integer tensor [batch, tokens]; got {inputIds.dtype} [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        var flat = inputIds.to_type(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        int batch = (int)inputIds.shape[0], length = (int)inputIds.shape[1];
        var rows = new long[batch][];
        for (int b = 0; b < batch; b++) rows[b] = flat.AsSpan(b * length, length).ToArray();
        return rows;
    }
}
