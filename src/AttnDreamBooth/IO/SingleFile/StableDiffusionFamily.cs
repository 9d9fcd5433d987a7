namespace AttnDreamBooth.IO.SingleFile;

/// <summary>The Stable Diffusion generation a single-file checkpoint belongs to, which fixes its text-encoder layout.</summary>
internal enum StableDiffusionFamily
{
    /// <summary>SD 1.x: OpenAI CLIP ViT-L/14 text encoder stored as a transformers model under <c>cond_stage_model.transformer.</c>.</summary>
    Sd1,

    /// <summary>SD 2.x: OpenCLIP ViT-H/14 text encoder stored in OpenCLIP's layout under <c>cond_stage_model.model.</c>.</summary>
    Sd2,
}
