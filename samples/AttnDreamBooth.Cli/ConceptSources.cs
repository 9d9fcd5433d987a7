using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Cli;

/// <summary>What <c>--concept</c> may name: a concept folder written by <c>train</c> (with <c>attndreambooth.json</c>), or a
/// concept made elsewhere — a folder with <c>learned_embeds.safetensors</c> (+ <c>unet/</c>, + a LoRA file) or an
/// embedding file (diffusers or A1111) — which is imported with its token taken from the file. A training run's folder
/// stands for its <c>concept</c> folder.</summary>
internal static class ConceptSources
{
    public static Task<PersonalizedModel> LoadAsync(string path, PersonalizationPipeline pipeline, string? category, string? lora, double loraScale, CancellationToken ct)
    {
        // A training run's folder stands for its concept folder.
        string full = CliInput.ConceptFolder(path);
        if (Directory.Exists(full) && File.Exists(Path.Combine(full, PersonalizedModel.MetadataFile)))
        {
            if (lora is not null) throw new ArgumentException($"--lora applies to imported concepts; '{full}' was written by train and holds its own fine-tuned U-Net or LoRA.");
            return PersonalizedModel.LoadAsync(full, pipeline, ct);
        }
        ConceptImport import;
        if (Directory.Exists(full)) import = ConceptImport.FromFolder(full);
        else if (File.Exists(full)) import = new ConceptImport(full);
        else throw new FileNotFoundException($"The concept '{full}' does not exist (give a concept folder, a folder with learned_embeds.safetensors, or an embedding file).", full);
        import = import with { Category = category ?? "", LoraPath = lora ?? import.LoraPath, LoraScale = loraScale };
        return PersonalizedModel.ImportAsync(import, pipeline, ct);
    }
}
