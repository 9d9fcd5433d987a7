using System.Text.Json;
using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// The <c>config.json</c> files of a diffusers Stable Diffusion folder, written from the library's config records with
/// the keys and spellings diffusers 0.24+ and transformers 4.34+ read (SD 1.x conventions: the legacy
/// <c>attention_head_dim</c> holds the number of heads).
/// </summary>
public static class DiffusersConfigFiles
{
    /// <summary>The diffusers version recorded in the configs (the oldest the layout was checked against).</summary>
    public const string DiffusersVersion = "0.24.0";


    /// <summary><c>model_index.json</c> of a StableDiffusionPipeline without safety checker.</summary>
    public static string ModelIndex(ShapesSchedulerSettings scheduler) => Serialize(new JsonObject
    {
        ["_class_name"] = "StableDiffusionPipeline",
        ["_diffusers_version"] = DiffusersVersion,
        ["feature_extractor"] = new JsonArray(null, null),
        ["image_encoder"] = new JsonArray(null, null),
        ["requires_safety_checker"] = false,
        ["safety_checker"] = new JsonArray(null, null),
        ["scheduler"] = new JsonArray("diffusers", SchedulerClassName(scheduler)),
        ["text_encoder"] = new JsonArray("transformers", "CLIPTextModel"),
        ["tokenizer"] = new JsonArray("transformers", "CLIPTokenizer"),
        ["unet"] = new JsonArray("diffusers", "UNet2DConditionModel"),
        ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
    });

    /// <summary><c>unet/config.json</c>.</summary>
    public static string UNet(UNetConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return Serialize(new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["_diffusers_version"] = DiffusersVersion,
            ["act_fn"] = c.ActFn,
            ["attention_head_dim"] = IntOrList(c.AttentionHeadDim),
            ["block_out_channels"] = List(c.BlockOutChannels),
            ["center_input_sample"] = c.CenterInputSample,
            ["conv_in_kernel"] = c.ConvInKernel,
            ["conv_out_kernel"] = c.ConvOutKernel,
            ["cross_attention_dim"] = IntOrList(c.CrossAttentionDim),
            ["down_block_types"] = List(c.DownBlockTypes),
            ["downsample_padding"] = c.DownsamplePadding,
            ["dropout"] = c.Dropout,
            ["dual_cross_attention"] = false,
            ["flip_sin_to_cos"] = c.FlipSinToCos,
            ["freq_shift"] = c.FreqShift,
            ["in_channels"] = c.InChannels,
            ["layers_per_block"] = IntOrList(c.LayersPerBlock),
            ["mid_block_scale_factor"] = c.MidBlockScaleFactor,
            ["mid_block_type"] = c.MidBlockType,
            ["norm_eps"] = c.NormEps,
            ["norm_num_groups"] = c.NormNumGroups,
            ["only_cross_attention"] = false,
            ["out_channels"] = c.OutChannels,
            ["sample_size"] = c.SampleSize,
            ["time_embedding_dim"] = c.TimeEmbeddingDim,
            ["transformer_layers_per_block"] = IntOrList(c.TransformerLayersPerBlock),
            ["up_block_types"] = List(c.UpBlockTypes),
            ["upcast_attention"] = c.UpcastAttention,
            ["use_linear_projection"] = c.UseLinearProjection,
        });
    }

    /// <summary><c>vae/config.json</c>.</summary>
    public static string Vae(AutoencoderKLConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return Serialize(new JsonObject
        {
            ["_class_name"] = "AutoencoderKL",
            ["_diffusers_version"] = DiffusersVersion,
            ["act_fn"] = c.ActFn,
            ["block_out_channels"] = List(c.BlockOutChannels),
            ["down_block_types"] = List(c.DownBlockTypes),
            ["force_upcast"] = c.ForceUpcast,
            ["in_channels"] = c.InChannels,
            ["latent_channels"] = c.LatentChannels,
            ["layers_per_block"] = c.LayersPerBlock,
            ["mid_block_add_attention"] = c.MidBlockAddAttention,
            ["norm_num_groups"] = c.NormNumGroups,
            ["out_channels"] = c.OutChannels,
            ["sample_size"] = c.SampleSize,
            ["scaling_factor"] = c.ScalingFactor,
            ["up_block_types"] = List(c.UpBlockTypes),
        });
    }

    /// <summary><c>text_encoder/config.json</c> (a transformers <c>CLIPTextModel</c>).</summary>
    /// <param name="c">The text-encoder configuration.</param>
    /// <param name="torchDtype">The dtype the weights are stored in (<c>float16</c> or <c>float32</c>).</param>
    public static string TextEncoder(ClipTextConfig c, string torchDtype = "float32")
    {
        ArgumentNullException.ThrowIfNull(c);
        return Serialize(new JsonObject
        {
            ["architectures"] = new JsonArray("CLIPTextModel"),
            ["attention_dropout"] = 0.0,
            ["bos_token_id"] = c.BosTokenId,
            ["dropout"] = 0.0,
            ["eos_token_id"] = c.EosTokenId,
            ["hidden_act"] = c.HiddenAct,
            ["hidden_size"] = c.HiddenSize,
            ["initializer_factor"] = 1.0,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = c.IntermediateSize,
            ["layer_norm_eps"] = c.LayerNormEps,
            ["max_position_embeddings"] = c.MaxPositionEmbeddings,
            ["model_type"] = "clip_text_model",
            ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_hidden_layers"] = c.NumHiddenLayers,
            ["pad_token_id"] = c.PadTokenId,
            ["projection_dim"] = c.ProjectionDim,
            ["torch_dtype"] = torchDtype,
            ["transformers_version"] = "4.34.0",
            ["vocab_size"] = c.VocabSize,
        });
    }

    private static string SchedulerClassName(ShapesSchedulerSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return s.ZeroTerminalSnr ? "DDIMScheduler" : "DPMSolverMultistepScheduler";
    }

    /// <summary><c>scheduler/scheduler_config.json</c>: DPM-Solver++ (2M) over SD's scaled-linear schedule; with
    /// <see cref="ShapesSchedulerSettings.ZeroTerminalSnr"/>, DDIM over the rescaled schedule from its last timestep.</summary>
    public static string Scheduler(ShapesSchedulerSettings s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.ZeroTerminalSnr) return ZeroTerminalSnrScheduler(s);
        return Serialize(new JsonObject
        {
            ["_class_name"] = "DPMSolverMultistepScheduler",
            ["_diffusers_version"] = DiffusersVersion,
            ["algorithm_type"] = "dpmsolver++",
            ["beta_end"] = s.BetaEnd,
            ["beta_schedule"] = "scaled_linear",
            ["beta_start"] = s.BetaStart,
            ["clip_sample"] = false,
            ["dynamic_thresholding_ratio"] = 0.995,
            ["lower_order_final"] = true,
            ["num_train_timesteps"] = s.NumTrainTimesteps,
            ["prediction_type"] = JsonFiles.EnumValue(s.PredictionType),
            ["sample_max_value"] = 1.0,
            ["set_alpha_to_one"] = false,
            ["solver_order"] = 2,
            ["solver_type"] = "midpoint",
            ["steps_offset"] = 1,
            ["thresholding"] = false,
            ["timestep_spacing"] = "leading",
            ["trained_betas"] = null,
            ["use_karras_sigmas"] = false,
        });
    }

    // DPM-Solver in diffusers 0.24 cannot rescale its schedule; DDIM can, and trailing spacing starts it at the
    // zero-signal timestep, where the model learnt to draw from the prompt alone.
    private static string ZeroTerminalSnrScheduler(ShapesSchedulerSettings s) => Serialize(new JsonObject
    {
        ["_class_name"] = "DDIMScheduler",
        ["_diffusers_version"] = DiffusersVersion,
        ["beta_end"] = s.BetaEnd,
        ["beta_schedule"] = "scaled_linear",
        ["beta_start"] = s.BetaStart,
        ["clip_sample"] = false,
        ["clip_sample_range"] = 1.0,
        ["dynamic_thresholding_ratio"] = 0.995,
        ["num_train_timesteps"] = s.NumTrainTimesteps,
        ["prediction_type"] = JsonFiles.EnumValue(s.PredictionType),
        ["rescale_betas_zero_snr"] = true,
        ["sample_max_value"] = 1.0,
        ["set_alpha_to_one"] = false,
        ["steps_offset"] = 1,
        ["thresholding"] = false,
        ["timestep_spacing"] = "trailing",
        ["trained_betas"] = null,
    });

    private static JsonNode IntOrList(IReadOnlyList<int> values) =>
        values.Count > 0 && values.All(v => v == values[0]) ? JsonValue.Create(values[0]) : List(values);

    private static JsonArray List(IReadOnlyList<int> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    private static JsonArray List(IReadOnlyList<string> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    private static string Serialize(JsonObject o) => JsonFiles.Serialize(o) + "\n";
}
