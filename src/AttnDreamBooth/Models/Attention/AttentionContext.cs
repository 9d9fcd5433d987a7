namespace AttnDreamBooth.Models.Attention;

/// <summary>
/// Per-call facts an <see cref="IAttentionProcessor"/> may need beyond the tensors: the spatial layout of the query
/// tokens. A U-Net attention layer sees <c>Height * Width</c> query tokens (pixel = y * Width + x); attention over a
/// plain sequence uses <see cref="ForSequence"/> (Height = length, Width = 1).
/// </summary>
/// <param name="Height">Rows of the query token grid.</param>
/// <param name="Width">Columns of the query token grid.</param>
public sealed record AttentionContext(int Height, int Width)
{
    /// <summary>Number of query tokens (<c>Height * Width</c>).</summary>
    public int Tokens => Height * Width;

    /// <summary>A context for a 1-D sequence of <paramref name="length"/> query tokens.</summary>
    public static AttentionContext ForSequence(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        return new AttentionContext(checked((int)length), 1);
    }
}
