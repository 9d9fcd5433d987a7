namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>How a pretraining run is carried out (nothing here changes the trained weights).</summary>
public sealed record PretrainingOptions
{
    /// <summary>The folder that receives the checkpoints (<c>checkpoint-*</c> folders).</summary>
    public required string CheckpointDirectory { get; init; }

    /// <summary>The CLIP tokenizer folder (vocab.json, merges.txt, …) whose vocabulary the text encoder is trained on.</summary>
    public required string TokenizerFolder { get; init; }

    /// <summary>Continue from the newest checkpoint in <see cref="CheckpointDirectory"/> (an error if there is none).</summary>
    public bool Resume { get; init; }

    /// <summary>Wall-clock time between checkpoints (besides the one at the end of each phase and on cancellation).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(4);

    /// <summary>Also write a checkpoint every this many steps of a phase (0: only by time).</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>Checkpoints to keep (newest first).</summary>
    public int KeepCheckpoints { get; init; } = 2;

    /// <summary>Intra-op threads of libtorch during the run (a process-wide setting, restored afterwards); null leaves
    /// libtorch's own setting (one per core).</summary>
    public int? IntraOpThreads { get; init; }

    /// <summary>A trained VAE folder (diffusers layout, the recipe's VAE architecture) to start from instead of training one:
    /// the recipe must have <c>VaeSteps = 0</c>. Meant for trying U-Net recipes on a VAE that is already good; the
    /// checkpoints then carry that VAE, so a resumed run does not need the folder again.</summary>
    public string? VaeFolder { get; init; }

    /// <summary>A Shapes model folder (diffusers layout, as <see cref="ShapesModelExporter"/> writes it, the recipe's
    /// architecture) to continue from: its VAE is used frozen as with <see cref="VaeFolder"/>, with the latent scaling
    /// factor of its <c>vae/config.json</c> (the one its denoiser was trained with), and the text encoder and U-Net start
    /// from its weights instead of fresh ones, under the recipe's fresh optimizer and learning-rate schedule. A recipe
    /// with a VAE phase fine-tunes that VAE first (its latent scale then measured again, unless the recipe trains only
    /// the decoder: <see cref="PretrainingRecipe.VaeDecoderOnly"/>); not together with <see cref="VaeFolder"/>.
    /// Checkpoints carry the weights, so a resumed run does not need the folder again.</summary>
    public string? InitialModelFolder { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for unusable values.</summary>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(CheckpointDirectory, nameof(CheckpointDirectory));
        ArgumentException.ThrowIfNullOrWhiteSpace(TokenizerFolder, nameof(TokenizerFolder));
        if (CheckpointInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(CheckpointInterval), CheckpointInterval, "must be positive");
        if (CheckpointEverySteps < 0) throw new ArgumentOutOfRangeException(nameof(CheckpointEverySteps), CheckpointEverySteps, "must not be negative");
        if (IntraOpThreads is < 1) throw new ArgumentOutOfRangeException(nameof(IntraOpThreads), IntraOpThreads, "must be at least 1");
        if (VaeFolder is not null && InitialModelFolder is not null)
            throw new ArgumentException("PretrainingOptions.VaeFolder and InitialModelFolder both name a VAE to start from; give one of them.", nameof(InitialModelFolder));
        if (KeepCheckpoints < 1) throw new ArgumentOutOfRangeException(nameof(KeepCheckpoints), KeepCheckpoints, "must be at least 1");
    }
}

/// <summary>The outcome of a finished pretraining run.</summary>
/// <param name="CheckpointPath">The final checkpoint (export it with <see cref="ShapesModelExporter"/>).</param>
/// <param name="State">Its scalar state (losses, timings, scaling factor).</param>
public sealed record PretrainingResult(string CheckpointPath, PretrainingCheckpointState State);
