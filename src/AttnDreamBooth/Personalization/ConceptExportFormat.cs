namespace AttnDreamBooth.Personalization;

/// <summary>What <see cref="PersonalizedModel.ExportAsync"/> writes. Every export is a folder with a <c>README.txt</c>
/// naming the trigger word, the prompt convention, the base model (name and weight fingerprint) and how to load it.</summary>
public enum ConceptExportFormat
{
    /// <summary>A complete diffusers pipeline folder (<c>model_index.json</c>, the fine-tuned U-Net, the text encoder
    /// with the learned row written into its token table, the tokenizer with the token added, the base VAE and scheduler):
    /// <c>StableDiffusionPipeline.from_pretrained(folder)</c> and <c>PersonalizationPipeline.FromPretrained(folder)</c>
    /// load it, and the token works as a word in prompts.</summary>
    Diffusers,

    /// <summary>An original-layout (LDM) single-file checkpoint of the whole fine-tuned model, plus the embedding file
    /// named after the trigger word: the form AUTOMATIC1111 and ComfyUI load.</summary>
    SingleFile,

    /// <summary>Only the embedding, <c>&lt;trigger&gt;.safetensors</c> in A1111's format (<c>emb_params</c>).</summary>
    Embedding,

    /// <summary>A kohya-format LoRA of the U-Net's fine-tuning (extracted by truncated SVD) plus the embedding file: the
    /// "few MB" form, applied to the unchanged base model.</summary>
    Lora,
}
