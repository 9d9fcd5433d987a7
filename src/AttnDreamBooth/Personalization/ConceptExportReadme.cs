using System.Globalization;
using System.Text;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Personalization;

/// <summary>The <c>README.txt</c> of an export: what each file is, the trigger word and prompt convention, the base
/// model (portable name and weight fingerprint, never a local path) and the exact way to load it in diffusers,
/// AUTOMATIC1111, ComfyUI and this library.</summary>
internal static class ConceptExportReadme
{
    /// <summary>"a &lt;trigger&gt; &lt;category&gt;" (just the trigger when the concept has no category).</summary>
    public static string PromptExample(string trigger, string category) =>
        category.Length == 0 ? $"a photo of {trigger}" : $"a photo of a {trigger} {category}";

    public static string Build(ExportContext context, LoraExportReport? lora)
    {
        var model = context.Model;
        string trigger = context.Trigger;
        string prompt = PromptExample(trigger, model.Category);
        string embedding = A1111EmbeddingFile.FileName(trigger);
        var text = new StringBuilder();
        void Line(string line = "") => text.Append(line).Append('\n');

        Line($"AttnDreamBooth concept \"{model.Token}\"" + (model.Category.Length > 0 ? $" (category: {model.Category})" : "") + $" - {Describe(context.Options.Format)}");
        Line();
        Line($"Trigger word:      {trigger}");
        Line(model.Category.Length == 0
            ? $"Prompt convention: \"{prompt}\" - the trigger word is used as a word, e.g. \"{prompt} on the beach\"."
            : $"Prompt convention: \"{prompt}\" - the trigger word stands right before the category word, e.g. \"{prompt} on the beach\".");
        Line($"Base model:        {context.BaseModel.Name} (weights fingerprint {context.BaseModel.Fingerprint};");
        Line($"                   per-file SHA-256 in {ConceptExporter.MetadataFile}; check yours with sha256sum)");
        if (model.ImportedFrom is null)
            Line($"Trained with:      AttnDreamBooth, seed {model.Seed}, steps per stage {string.Join("/", model.Plan.EnabledStages.Select(s => model.Plan[s].Steps))}");
        Line();
        Line("Files");
        switch (context.Options.Format)
        {
            case ConceptExportFormat.Diffusers:
                Line("  model_index.json    the diffusers pipeline index");
                Line("  unet/               the fine-tuned U-Net");
                Line($"  text_encoder/       the base text encoder with the learned embedding of \"{model.Token}\" written into its token table");
                Line($"  tokenizer/          the base tokenizer; added_tokens.json adds \"{model.Token}\" (id {context.Embedding.TokenIds[0]})");
                Line("  vae/, scheduler/    the base model's");
                break;
            case ConceptExportFormat.SingleFile:
                Line($"  {ConceptExporter.CheckpointFileName(trigger)}   the whole fine-tuned model (U-Net, VAE, text encoder) in the original single-file layout");
                Line($"  {embedding}   the learned embedding (A1111/ComfyUI textual inversion; the file name is the trigger word)");
                break;
            case ConceptExportFormat.Embedding:
                Line($"  {embedding}   the learned embedding (A1111/ComfyUI textual inversion; the file name is the trigger word)");
                Line("  It holds the token's embedding only; the fine-tuned U-Net is not part of this export.");
                break;
            case ConceptExportFormat.Lora:
                Line($"  {ConceptExporter.LoraFileName(trigger)}   the U-Net's fine-tuning as a kohya-format LoRA (apply to the base model at strength 1)");
                Line($"  {embedding}   the learned embedding (A1111/ComfyUI textual inversion; the file name is the trigger word)");
                break;
        }
        Line($"  {ConceptExporter.MetadataFile}   token, category, base model identity");
        Line();
        Line("How to use it");
        Line();
        WriteUsage(Line, context, prompt, embedding);
        if (lora is not null)
        {
            Line();
            Line("LoRA fidelity");
            if (lora.Trained)
            {
                string ranks = string.Join(", ", lora.Layers.Select(l => l.Rank).Distinct().Select(r => r.ToString(CultureInfo.InvariantCulture)));
                Line($"  {lora.Layers.Count} layers, rank {ranks}: the adapters the concept was trained with, written exactly.");
            }
            else
            {
                string rank = context.Options.LoraRank is { } r ? r.ToString(CultureInfo.InvariantCulture) : "full";
                Line($"  {lora.Layers.Count} layers, rank {rank}; largest relative weight error |dW - up*down| / |dW| = {lora.MaxRelativeError.ToString("G3", CultureInfo.InvariantCulture)}.");
            }
            if (lora.NotCarried.Count > 0)
            {
                Line($"  {lora.NotCarried.Count} other U-Net tensors changed in fine-tuning (biases, norms, layers no LoRA wraps) and are not in the LoRA;");
                Line($"  the largest relative change among them is {lora.MaxNotCarriedRelativeChange.ToString("G3", CultureInfo.InvariantCulture)}. The single-file and diffusers exports keep them.");
            }
        }
        return text.ToString();
    }

    private static void WriteUsage(Action<string> line, ExportContext context, string prompt, string embedding)
    {
        string trigger = context.Trigger;
        string base_ = context.BaseModel.Name;
        bool sd2 = context.Components.TextEncoder.Config.HiddenAct == "gelu";
        string lora = ConceptExporter.LoraFileName(trigger);
        string loraName = Path.GetFileNameWithoutExtension(lora);
        switch (context.Options.Format)
        {
            case ConceptExportFormat.Diffusers:
                line("diffusers (Python):");
                line("  from diffusers import StableDiffusionPipeline");
                line("  pipe = StableDiffusionPipeline.from_pretrained(\"path/to/this/folder\")");
                line($"  image = pipe(\"{prompt}\").images[0]");
                line("");
                line("AttnDreamBooth (.NET):");
                line("  using var pipeline = PersonalizationPipeline.FromPretrained(\"path/to/this/folder\").Build();");
                line($"  var images = await pipeline.GenerateAsync(\"{prompt}\");");
                line("  or: AttnDreamBooth.Cli generate --model path/to/this/folder --prompt \"" + prompt + "\" --out images");
                line("");
                line("AUTOMATIC1111 / ComfyUI load single files: export with --format single-file for them.");
                break;
            case ConceptExportFormat.SingleFile:
                line("AUTOMATIC1111:");
                line($"  copy {ConceptExporter.CheckpointFileName(trigger)} to models/Stable-diffusion/ and select it;");
                line($"  copy {embedding} to embeddings/; prompt: \"{prompt}\"");
                if (sd2) line("  (SD 2.x: for a v-prediction model put the matching v2-inference-v.yaml next to the checkpoint, named like it.)");
                line("ComfyUI:");
                line($"  copy {ConceptExporter.CheckpointFileName(trigger)} to models/checkpoints/ (Load Checkpoint node) and {embedding} to models/embeddings/;");
                line($"  prompt: \"{prompt.Replace(trigger, "embedding:" + trigger, StringComparison.Ordinal)}\"");
                line("diffusers (Python):");
                line($"  pipe = StableDiffusionPipeline.from_single_file(\"{ConceptExporter.CheckpointFileName(trigger)}\", config=\"{base_}\")");
                line($"  pipe.load_textual_inversion(\"{embedding}\", token=\"{trigger}\")");
                line($"  image = pipe(\"{prompt}\").images[0]");
                line("AttnDreamBooth (.NET):");
                line($"  PersonalizationPipeline.FromSingleFile(\"{ConceptExporter.CheckpointFileName(trigger)}\", configFolder: \"<{base_} folder>\"), then");
                line($"  PersonalizedModel.ImportAsync(new ConceptImport(\"{embedding}\"), pipeline)");
                break;
            case ConceptExportFormat.Embedding:
                line($"AUTOMATIC1111: copy {embedding} to embeddings/; prompt: \"{prompt}\"");
                line($"ComfyUI: copy {embedding} to models/embeddings/; prompt: \"{prompt.Replace(trigger, "embedding:" + trigger, StringComparison.Ordinal)}\"");
                line($"diffusers (Python): pipe.load_textual_inversion(\"{embedding}\", token=\"{trigger}\")");
                line($"AttnDreamBooth: AttnDreamBooth.Cli generate --model <{base_} folder> --concept {embedding} --prompt \"{prompt}\" --out images");
                break;
            case ConceptExportFormat.Lora:
                line("AUTOMATIC1111:");
                line($"  copy {lora} to models/Lora/ and {embedding} to embeddings/; with the base model {base_} selected, prompt:");
                line($"  \"{prompt} <lora:{loraName}:1>\"");
                line("ComfyUI:");
                line($"  copy {lora} to models/loras/ (LoraLoader node after Load Checkpoint of {base_}, strength 1)");
                line($"  and {embedding} to models/embeddings/; prompt: \"{prompt.Replace(trigger, "embedding:" + trigger, StringComparison.Ordinal)}\"");
                line("diffusers (Python):");
                line($"  pipe = StableDiffusionPipeline.from_pretrained(\"{base_}\")");
                line($"  pipe.load_lora_weights(\".\", weight_name=\"{lora}\")");
                line($"  pipe.load_textual_inversion(\"{embedding}\", token=\"{trigger}\")");
                line($"  image = pipe(\"{prompt}\").images[0]");
                line("AttnDreamBooth (.NET):");
                line($"  AttnDreamBooth.Cli generate --model <{base_} folder> --concept {embedding} --lora {lora} --prompt \"{prompt}\" --out images");
                break;
        }
    }

    private static string Describe(ConceptExportFormat format) => format switch
    {
        ConceptExportFormat.Diffusers => "diffusers pipeline folder",
        ConceptExportFormat.SingleFile => "single-file checkpoint + embedding",
        ConceptExportFormat.Embedding => "textual-inversion embedding",
        _ => "LoRA + embedding",
    };
}
