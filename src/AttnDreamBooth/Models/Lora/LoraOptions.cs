namespace AttnDreamBooth.Models.Lora;

/// <summary>
/// Shape of new LoRA adapters: the update of a wrapped layer is <c>scale · (Alpha / Rank) · up(down(dropout(x)))</c>.
/// </summary>
/// <param name="Rank">Inner width r of each adapter (down: in → r, up: r → out). Capped per layer at min(in, out).</param>
/// <param name="Alpha">kohya's alpha: the update is multiplied by <c>Alpha / Rank</c>; null means Alpha = Rank (factor 1).</param>
/// <param name="Dropout">Dropout probability on the adapter's input while training (0 = none); the base layer never sees it.</param>
public sealed record LoraOptions(int Rank = 4, double? Alpha = null, double Dropout = 0.0)
{
    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentOutOfRangeException(nameof(Rank), Rank, "LoRA rank must be positive.");
        if (Alpha is { } a && (!double.IsFinite(a) || a <= 0)) throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, "LoRA alpha must be a positive finite number.");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, "LoRA dropout must be in [0, 1).");
    }
}
