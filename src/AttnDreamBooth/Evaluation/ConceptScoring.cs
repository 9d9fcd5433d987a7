using AttnDreamBooth.Imaging;
namespace AttnDreamBooth.Evaluation;

/// <summary>The images generated for one prompt.</summary>
/// <param name="Prompt">The generation prompt as given to the model, containing the identifier token (e.g. <c>"a sks dog on the beach"</c>).</param>
/// <param name="Images">The generated images.</param>
internal sealed record GeneratedImageSet(string Prompt, IReadOnlyList<RgbImage> Images);

/// <summary>What <see cref="ConceptEvaluator.ScoreAsync"/> scores.</summary>
/// <param name="SourceImages">The concept's training photos.</param>
/// <param name="Generated">Generated images grouped by prompt.</param>
/// <param name="IdentifierToken">The identifier removed from prompts for the text score (e.g. <c>sks</c> or <c>&lt;new1&gt;</c>).</param>
internal sealed record ConceptScoringRequest(IReadOnlyList<RgbImage> SourceImages, IReadOnlyList<GeneratedImageSet> Generated, string IdentifierToken)
{
    /// <summary>Images per CLIP forward pass.</summary>
    public int BatchSize { get; init; } = 16;
}

/// <summary>The scores of one prompt's images.</summary>
/// <param name="Prompt">The generation prompt.</param>
/// <param name="TextPrompt">The prompt the text score uses (identifier removed).</param>
/// <param name="Identity">Mean image-image cosine of this prompt's images with every source image.</param>
/// <param name="Text">Mean cosine of this prompt's images with <paramref name="TextPrompt"/>.</param>
/// <param name="ImageIdentity">Per image: mean cosine with the source images.</param>
/// <param name="ImageText">Per image: cosine with the text prompt.</param>
public sealed record PromptScores(string Prompt, string TextPrompt, double Identity, double Text, IReadOnlyList<double> ImageIdentity, IReadOnlyList<double> ImageText);

/// <summary>The paper's two numbers with a per-prompt breakdown.</summary>
/// <param name="Identity">Mean over all (source, generated) pairs of the normalised image-embedding dot product.</param>
/// <param name="Text">Mean over generated images of the dot product with their prompt's embedding (identifier removed).</param>
/// <param name="PerPrompt">Per prompt, in request order.</param>
/// <param name="SourceCount">Number of source images.</param>
/// <param name="GeneratedCount">Number of generated images.</param>
internal sealed record ConceptScores(double Identity, double Text, IReadOnlyList<PromptScores> PerPrompt, int SourceCount, int GeneratedCount);

/// <summary>The phase an evaluation is in.</summary>
public enum EvaluationPhase
{
    /// <summary>Generating the images (<see cref="ConceptEvaluator.EvaluateAsync"/> only); counts images.</summary>
    GeneratingImages,

    /// <summary>Embedding the source images.</summary>
    EmbeddingSourceImages,

    /// <summary>Embedding the generated images.</summary>
    EmbeddingGeneratedImages,

    /// <summary>Embedding the prompts.</summary>
    EmbeddingPrompts,

    /// <summary>Done.</summary>
    Completed,
}

/// <summary>Progress of an evaluation.</summary>
/// <param name="Phase">The current phase.</param>
/// <param name="Completed">Items of the phase done.</param>
/// <param name="Total">Items of the phase.</param>
public sealed record EvaluationProgress(EvaluationPhase Phase, int Completed, int Total)
{
    /// <summary>While generating: the prompt being rendered (as given to the model).</summary>
    public string? Prompt { get; init; }
}
