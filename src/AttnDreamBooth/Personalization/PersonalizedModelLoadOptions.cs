namespace AttnDreamBooth.Personalization;

/// <summary>Checks applied by <see cref="PersonalizedModel.LoadAsync(string, PersonalizationPipeline, PersonalizedModelLoadOptions, CancellationToken)"/>
/// and <see cref="PersonalizedModel.ImportAsync(ConceptImport, PersonalizationPipeline, PersonalizedModelLoadOptions, CancellationToken)"/>.
/// Size limits (embedding rows, tensor and file sizes) are the pipeline's <see cref="PersonalizationPipeline.ResourceLimits"/>.</summary>
public sealed record PersonalizedModelLoadOptions
{
    /// <summary>The defaults: every weight checked to be finite.</summary>
    public static PersonalizedModelLoadOptions Default { get; } = new();

    /// <summary>Refuse a concept whose U-Net weights or embedding hold NaN or infinity (default true). Each tensor is
    /// read once more for the check; turn it off only for files you trust.</summary>
    public bool CheckFiniteWeights { get; init; } = true;

    /// <summary>Hash the pipeline's base-model weight files and refuse (<see cref="IO.ModelConfigException"/>) a concept whose
    /// recorded base-model fingerprint differs, or that records none (default false: only the base model's name is
    /// compared, and a different name is logged as a warning). Reading every weight file takes seconds for a real-size model.</summary>
    public bool VerifyBaseModel { get; init; }
}
