namespace AttnDreamBooth.Personalization;

public sealed partial class PersonalizedModel
{
    /// <summary>
    /// Writes the concept for other tools as <paramref name="options"/> says (<see cref="ConceptExportFormat"/>): a
    /// diffusers pipeline folder, a single-file checkpoint + A1111 embedding, the embedding alone, or a kohya LoRA +
    /// embedding, each with a <c>README.txt</c> (trigger word, prompt convention, base model name and weight fingerprint,
    /// how to load it) and <c>attndreambooth_export.json</c>. The folder is assembled under a temporary name and swapped
    /// in, so a failed or cancelled export leaves no partial folder (and an existing one, with
    /// <see cref="ConceptExportOptions.Overwrite"/>, intact). Runs on the pipeline's thread like training and generation.
    /// </summary>
    /// <param name="folder">The export folder.</param>
    /// <param name="options">Format and settings (default: a diffusers folder in float32).</param>
    /// <param name="progress">Reports each stage (fingerprinting, writing each component, LoRA layers).</param>
    /// <param name="ct">Checked between files and layers.</param>
    /// <exception cref="ArgumentException">Invalid options, or a trigger word that cannot be a file name.</exception>
    /// <exception cref="IO.OutputFolderException">The folder is not empty (without Overwrite), is a file, or holds the base model.</exception>
    /// <exception cref="InvalidOperationException">The concept is no longer loaded in its pipeline, or (LoRA) the U-Net did not change.</exception>
    public Task<ConceptExportResult> ExportAsync(string folder, ConceptExportOptions? options = null, IProgress<ConceptExportProgress>? progress = null,
        CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        options ??= new ConceptExportOptions();
        options.Validate();
        return Pipeline.RunExclusive(() => IO.TensorAllocation.Guard($"exporting the concept '{Token}'",
            "Export with WeightsDType = Float16 (half the memory), or close other work on the machine.",
            () => ConceptExporter.Export(this, folder, options, progress, ct)), ct);
    }
}
