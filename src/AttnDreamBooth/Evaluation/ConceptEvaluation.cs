using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Evaluation;

/// <summary>Options of <see cref="ConceptEvaluator.EvaluateAsync"/>.</summary>
public sealed record ConceptEvaluationOptions
{
    /// <summary>Prompts, images per prompt, seed and sampler settings; null uses <see cref="EvaluationProtocol.Paper(string)"/>
    /// for the concept's category (the DreamBooth object or live-subject prompts, 16 images each, DPM-Solver++ 50 steps,
    /// guidance 7.5, seed 0).</summary>
    public EvaluationProtocol? Protocol { get; init; }

    /// <summary>Images rendered per U-Net batch (a speed/memory trade-off; the images do not depend on it).</summary>
    public int GenerationBatchSize { get; init; } = 1;

    /// <summary>Image width in pixels (null: the model's native resolution).</summary>
    public int? Width { get; init; }

    /// <summary>Image height in pixels (null: the model's native resolution).</summary>
    public int? Height { get; init; }

    /// <summary>Images per CLIP forward pass.</summary>
    public int ClipBatchSize { get; init; } = 16;

    /// <summary>Throws <see cref="ArgumentException"/> for unusable values.</summary>
    public void Validate()
    {
        if (GenerationBatchSize is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(GenerationBatchSize), GenerationBatchSize, "must be between 1 and 64");
        if (ClipBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(ClipBatchSize), ClipBatchSize, "must be at least 1");
        new GenerationOptions { Width = Width, Height = Height }.Validate();
        Protocol?.Validate();
    }
}

/// <summary>The result of <see cref="ConceptEvaluator.EvaluateAsync"/>: the paper's two numbers, a per-prompt breakdown
/// and the images they were computed on.</summary>
/// <param name="Protocol">The protocol that was run.</param>
/// <param name="Token">The concept's identifier token (removed from the prompts for the text score).</param>
/// <param name="Category">The concept's category word.</param>
/// <param name="Identity">Mean over all (source, generated) pairs of the normalised image-embedding dot product.</param>
/// <param name="Text">Mean over generated images of the dot product with their prompt's embedding (identifier removed).</param>
/// <param name="PerPrompt">Per prompt, in <see cref="EvaluationProtocol.Prompts"/> order.</param>
/// <param name="SourceCount">Number of source images.</param>
/// <param name="GeneratedCount">Number of generated images.</param>
/// <param name="Images"><c>Images[p][i]</c> is image <c>i</c> of prompt <c>p</c>, generated from seed <c>Protocol.Seed + i</c>;
/// its scores are <c>PerPrompt[p].ImageIdentity[i]</c> and <c>.ImageText[i]</c>.</param>
public sealed record ConceptEvaluation(EvaluationProtocol Protocol, string Token, string Category, double Identity, double Text,
    IReadOnlyList<PromptScores> PerPrompt, int SourceCount, int GeneratedCount, IReadOnlyList<IReadOnlyList<GeneratedImage>> Images);
