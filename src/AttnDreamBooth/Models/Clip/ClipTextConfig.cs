using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Blocks;

namespace AttnDreamBooth.Models.Clip;

/// <summary>The configuration of a transformers <c>CLIPTextModel</c> (<c>text_encoder/config.json</c>). Defaults are
/// transformers' <c>CLIPTextConfig</c> defaults of the version the reference fixtures were made with (4.34.0.dev0).</summary>
public sealed record ClipTextConfig
{
    /// <summary>Rows of the token-embedding table (49408 for CLIP).</summary>
    public int VocabSize { get; init; } = 49408;

    /// <summary>Width of the hidden states (768 for SD 1.x, 1024 for SD 2.x).</summary>
    public int HiddenSize { get; init; } = 512;

    /// <summary>Width of the MLP's hidden layer.</summary>
    public int IntermediateSize { get; init; } = 2048;

    /// <summary>Width of the projection head of a full CLIP model (not part of <c>CLIPTextModel</c>; kept for completeness).</summary>
    public int ProjectionDim { get; init; } = 512;

    /// <summary>Number of encoder layers.</summary>
    public int NumHiddenLayers { get; init; } = 12;

    /// <summary>Number of attention heads per layer.</summary>
    public int NumAttentionHeads { get; init; } = 8;

    /// <summary>Rows of the position-embedding table: the longest sequence (77).</summary>
    public int MaxPositionEmbeddings { get; init; } = 77;

    /// <summary>MLP activation: <c>quick_gelu</c> (SD 1.x), <c>gelu</c> (SD 2.x), or another transformers name the library implements (<c>gelu_new</c>, <c>gelu_pytorch_tanh</c>, <c>relu</c>, <c>silu</c>/<c>swish</c>, <c>mish</c>).</summary>
    public string HiddenAct { get; init; } = "quick_gelu";

    /// <summary>Epsilon of every LayerNorm.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Id of the padding token as the model config states it (informational; the tokenizer pads).</summary>
    public int PadTokenId { get; init; } = 1;

    /// <summary>Id of the start token as the model config states it (informational).</summary>
    public int BosTokenId { get; init; }

    /// <summary>Selects the pooling rule: the legacy value 2 (every SD config) pools at <c>argmax(input_ids)</c>, i.e. the
    /// first <c>&lt;|endoftext|&gt;</c>; any other value pools at the first occurrence of that id.</summary>
    public int EosTokenId { get; init; } = 2;

    /// <summary>The width of one attention head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Reads <paramref name="path"/> (a text-encoder <c>config.json</c>; a full CLIP config is read from its
    /// <c>text_config</c> section), checking it against <paramref name="limits"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static ClipTextConfig Load(string path, ResourceLimits? limits = null)
    {
        using var scope = ResourceLimits.Use(limits);
        return FromReader(ConfigReader.Load(path));
    }

    /// <summary>Reads the values from an already opened config.</summary>
    internal static ClipTextConfig FromReader(ConfigReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        if (!reader.Has("hidden_size") && reader.Section("text_config") is { } nested) reader = nested;
        var defaults = new ClipTextConfig();
        var config = new ClipTextConfig
        {
            VocabSize = reader.GetInt("vocab_size", defaults.VocabSize),
            HiddenSize = reader.GetInt("hidden_size", defaults.HiddenSize),
            IntermediateSize = reader.GetInt("intermediate_size", defaults.IntermediateSize),
            ProjectionDim = reader.GetInt("projection_dim", defaults.ProjectionDim),
            NumHiddenLayers = reader.GetInt("num_hidden_layers", defaults.NumHiddenLayers),
            NumAttentionHeads = reader.GetInt("num_attention_heads", defaults.NumAttentionHeads),
            MaxPositionEmbeddings = reader.GetInt("max_position_embeddings", defaults.MaxPositionEmbeddings),
            HiddenAct = reader.GetString("hidden_act", defaults.HiddenAct),
            LayerNormEps = reader.GetDouble("layer_norm_eps", defaults.LayerNormEps),
            PadTokenId = reader.GetInt("pad_token_id", defaults.PadTokenId),
            BosTokenId = reader.GetInt("bos_token_id", defaults.BosTokenId),
            EosTokenId = reader.GetInt("eos_token_id", defaults.EosTokenId),
        };
        reader.Require(config.VocabSize > 0, "vocab_size", "must be positive");
        reader.Require(config.HiddenSize > 0, "hidden_size", "must be positive");
        reader.Require(config.IntermediateSize > 0, "intermediate_size", "must be positive");
        reader.Require(config.NumHiddenLayers >= 0, "num_hidden_layers", "must not be negative");
        reader.Require(config.NumAttentionHeads > 0 && config.HiddenSize % config.NumAttentionHeads == 0, "num_attention_heads",
            $"must be positive and divide hidden_size ({config.HiddenSize})");
        reader.Require(config.MaxPositionEmbeddings > 0, "max_position_embeddings", "must be positive");
        reader.Require(config.LayerNormEps > 0, "layer_norm_eps", "must be positive");
        Activations.Require(config.HiddenAct, ActivationNaming.Transformers, reader.FilePath, "hidden_act");
        ClipTextConfigLimits.Check(config, reader.FilePath);
        return config;
    }
}
