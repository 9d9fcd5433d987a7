namespace AttnDreamBooth.Models.Lora;

/// <summary>
/// How <see cref="LoraExtractor.Extract"/> turns weight deltas into LoRA adapters. Give exactly one of <see cref="Rank"/> and
/// <see cref="EnergyThreshold"/>.
/// </summary>
/// <param name="Rank">A fixed rank per layer (capped at the layer's min(out, in·kh·kw)).</param>
/// <param name="EnergyThreshold">Per layer, the smallest rank whose singular values keep at least this fraction of the
/// delta's squared Frobenius norm (in (0, 1]), capped at <see cref="MaxRank"/>.</param>
/// <param name="MaxRank">Upper bound of the rank chosen by <see cref="EnergyThreshold"/>.</param>
/// <param name="MinRelativeDelta">Layers whose delta is at most this fraction of the base weight's norm (Frobenius) are
/// treated as unchanged and get no adapter (reported in <see cref="LoraExtraction.UnchangedLayers"/>).</param>
/// <param name="UNetModules">U-Net layers to consider.</param>
/// <param name="TextEncoderModules">Text-encoder layers to consider (when text encoders are given).</param>
/// <param name="ProbeBatch">Rows of the fixed random input each layer's output difference is measured on.</param>
/// <param name="ProbeSize">Height and width of the conv layers' probe input.</param>
/// <param name="Seed">Seed of the probe inputs.</param>
internal sealed record LoraExtractionOptions(
    int? Rank = 4,
    double? EnergyThreshold = null,
    int MaxRank = 128,
    double MinRelativeDelta = 1e-7,
    LoraUNetModules UNetModules = LoraUNetModules.All,
    LoraTextEncoderModules TextEncoderModules = LoraTextEncoderModules.All,
    int ProbeBatch = 16,
    int ProbeSize = 8,
    long Seed = 0)
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if ((Rank is null) == (EnergyThreshold is null))
            throw new ArgumentException("Give exactly one of Rank and EnergyThreshold.", nameof(Rank));
        if (Rank is <= 0) throw new ArgumentOutOfRangeException(nameof(Rank), Rank, "must be positive.");
        if (EnergyThreshold is { } e && !(e > 0 && e <= 1)) throw new ArgumentOutOfRangeException(nameof(EnergyThreshold), e, "must be in (0, 1].");
        if (MaxRank <= 0) throw new ArgumentOutOfRangeException(nameof(MaxRank), MaxRank, "must be positive.");
        if (!(MinRelativeDelta >= 0) || !double.IsFinite(MinRelativeDelta)) throw new ArgumentOutOfRangeException(nameof(MinRelativeDelta), MinRelativeDelta, "must be a finite number ≥ 0.");
        if (ProbeBatch <= 0) throw new ArgumentOutOfRangeException(nameof(ProbeBatch), ProbeBatch, "must be positive.");
        if (ProbeSize <= 0) throw new ArgumentOutOfRangeException(nameof(ProbeSize), ProbeSize, "must be positive.");
    }
}

/// <summary>What extraction did to one layer.</summary>
/// <param name="Component">The model.</param>
/// <param name="ModulePath">The layer's diffusers module path.</param>
/// <param name="Rank">The rank kept.</param>
/// <param name="DeltaNorm">‖ΔW‖_F of the fine-tune.</param>
/// <param name="RelativeError">‖ΔW − up·down‖_F / ‖ΔW‖_F, measured with the stored (float32) adapter weights.</param>
/// <param name="DiscardedEnergyError">sqrt(Σ_{i≥rank} σ_i²) / sqrt(Σ σ_i²): what truncating the SVD must cost.</param>
/// <param name="OutputRelativeError">On the fixed probe input x: ‖(ΔW − up·down) x‖ / ‖ΔW x‖ (the change the LoRA misses,
/// relative to the change of the fine-tune).</param>
/// <param name="OutputMaxAbsError">max |(ΔW − up·down) x| on the probe input.</param>
internal sealed record LoraLayerExtraction(LoraComponent Component, string ModulePath, int Rank, double DeltaNorm,
    double RelativeError, double DiscardedEnergyError, double OutputRelativeError, double OutputMaxAbsError)
{
    /// <summary>Linear, 1×1 or k×k conv.</summary>
    internal LoraLayerKind Kind { get; init; }
}

/// <summary>The result of <see cref="LoraExtractor.Extract"/>: a LoRA network on the base models plus a per-layer report.</summary>
internal sealed class LoraExtraction : IDisposable
{
    internal LoraExtraction(LoraNetwork network, IReadOnlyList<LoraLayerExtraction> layers, IReadOnlyList<string> unchanged)
    {
        Network = network;
        Layers = layers;
        UnchangedLayers = unchanged;
    }

    /// <summary>The adapters (alpha = rank, not installed), wrapping the base models' layers. Save it with
    /// <see cref="LoraNetwork.Save"/>; install it on the base models to approximate the fine-tune.</summary>
    public LoraNetwork Network { get; }

    /// <summary>One entry per layer that got an adapter, in module order (U-Net first).</summary>
    public IReadOnlyList<LoraLayerExtraction> Layers { get; }

    /// <summary>"unet:&lt;path&gt;" / "text_encoder:&lt;path&gt;" of considered layers whose delta was below
    /// <see cref="LoraExtractionOptions.MinRelativeDelta"/>.</summary>
    public IReadOnlyList<string> UnchangedLayers { get; }

    /// <inheritdoc />
    public void Dispose() => Network.Dispose();
}
