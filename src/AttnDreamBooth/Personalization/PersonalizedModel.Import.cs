using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Personalization;

public sealed partial class PersonalizedModel
{
    /// <summary>Imports a concept made elsewhere (see <see cref="ConceptImport"/>) onto <paramref name="pipeline"/>, which
    /// holds its base model and no concept yet, with the default checks.</summary>
    /// <inheritdoc cref="ImportAsync(ConceptImport, PersonalizationPipeline, PersonalizedModelLoadOptions, CancellationToken)"/>
    public static Task<PersonalizedModel> ImportAsync(ConceptImport source, PersonalizationPipeline pipeline, CancellationToken ct = default) =>
        ImportAsync(source, pipeline, PersonalizedModelLoadOptions.Default, ct);

    /// <summary>
    /// Imports a concept made elsewhere onto <paramref name="pipeline"/>, all-or-nothing like
    /// <see cref="LoadAsync(string, PersonalizationPipeline, PersonalizedModelLoadOptions, CancellationToken)"/>: the embedding
    /// (one entry; its token is the file's — the key of a diffusers file, the file name of an A1111 one — unless
    /// <see cref="ConceptImport.Token"/> renames it), the <c>unet/</c> folder (config equal to the base model's, weights'
    /// names, shapes and values) and the LoRA file (every key resolved, shapes) are validated before anything changes;
    /// then the U-Net weights are copied, the LoRA merged and the token added.
    /// </summary>
    /// <exception cref="InvalidWeightsException">The embedding file is malformed, holds several embeddings, or its width
    /// is not the base text encoder's (e.g. an SD 1.x embedding on SD 2.x; the message gives both widths).</exception>
    /// <exception cref="InvalidWeightsException">A pickle file (<c>.bin</c>, <c>.pt</c>).</exception>
    /// <exception cref="ModelConfigException">The <c>unet/</c> folder is incomplete or made for another base model.</exception>
    /// <exception cref="InvalidWeightsException">The U-Net weights do not fit the pipeline's U-Net.</exception>
    /// <exception cref="IO.InvalidWeightsException">The LoRA file has keys that match no layer, or wrong shapes.</exception>
    /// <exception cref="ConceptLoadFailedException">Copying failed after validation; the pipeline is unusable.</exception>
    public static Task<PersonalizedModel> ImportAsync(ConceptImport source, PersonalizationPipeline pipeline, PersonalizedModelLoadOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(options);
        source.Validate();
        return pipeline.RunExclusive(() => Import(source, pipeline, options, ct), ct);
    }

    private static PersonalizedModel Import(ConceptImport source, PersonalizationPipeline pipeline, PersonalizedModelLoadOptions options, CancellationToken ct)
    {
        if (pipeline.Concept is not null) throw new InvalidOperationException($"The pipeline already holds the concept '{pipeline.Concept.Token}'.");
        var c = pipeline.Components;
        string embeddingPath = Path.GetFullPath(source.EmbeddingPath);

        // Validation: nothing below changes the pipeline until every file has been checked.
        var readOptions = new LearnedEmbeddingsReadOptions { CheckFinite = options.CheckFiniteWeights };
        using var prepared = ConceptEmbedding.Prepare(embeddingPath, c.Tokenizer, c.TextEncoder, source.Token, readOptions, null);
        if (prepared.EntryNames.Count != 1)
            throw InvalidWeightsException.Embeddings(embeddingPath, $"holds {prepared.EntryNames.Count} embeddings ({string.Join(", ", prepared.EntryNames)}); a concept is one, so import them one file at a time");
        ct.ThrowIfCancellationRequested();

        var loadOptions = new StateDictLoadOptions { CheckFinite = options.CheckFiniteWeights };
        StateDictSource? unet = null;
        LoraNetwork? lora = null;
        try
        {
            if (source.UNetFolder is { } unetFolder)
            {
                string full = Path.GetFullPath(unetFolder);
                if (!Directory.Exists(full)) throw new ModelConfigException(full, null, "the U-Net folder does not exist");
                ConceptComponentConfig.CheckUNet(Path.Combine(full, "config.json"), c.Folder.ConfigPath("unet"));
                unet = StateDictSource.OpenComponent(full);
                StateDictLoader.Validate(c.UNet, unet, loadOptions);
                ct.ThrowIfCancellationRequested();
            }
            if (source.LoraPath is { } loraPath)
            {
                lora = LoraFile.Load(Path.GetFullPath(loraPath), c.UNet, c.TextEncoder, new LoraLoadOptions(Scale: source.LoraScale));
                ct.ThrowIfCancellationRequested();
            }

            // Apply: no cancellation from here on, a half-applied concept is worse than a late one.
            ConceptEmbedding embedding;
            try
            {
                if (unet is not null) StateDictLoader.Load(c.UNet, unet, loadOptions);
                if (lora is not null)
                {
                    lora.Merge();
                    lora.Remove();
                }
                embedding = prepared.Apply();
            }
            catch (Exception ex)
            {
                var failure = new ConceptLoadFailedException(embeddingPath, ex);
                pipeline.Broken = failure;
                throw failure;
            }
            pipeline.ConceptEmbedding = embedding;
            pipeline.Concept = new PersonalizedModel(pipeline, embedding.Tokens[0], source.Category.Trim(), c.ModelSource, StagePlan.Paper, 0, [])
            {
                ImportedFrom = embeddingPath,
            };
            return pipeline.Concept;
        }
        finally
        {
            unet?.Dispose();
            lora?.Dispose();
        }
    }
}
