using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// The CLIP text encoder of Stable Diffusion (transformers' <c>CLIPTextModel</c>, same parameter names, so
/// <c>text_encoder/model.safetensors</c> loads strictly): token + position embeddings, pre-LayerNorm encoder layers with a
/// causal mask, a final LayerNorm, and the pooled output at each row's end token.
/// </summary>
/// <remarks>SD 1.x uses OpenAI's CLIP ViT-L/14 text model (quick_gelu); SD 2.x the OpenCLIP ViT-H/14 text model converted
/// to this layout with its last layer dropped (gelu), so its <c>last_hidden_state</c> is the penultimate OpenCLIP layer.
/// As in Stable Diffusion pipelines, no padding mask is applied unless one is passed.</remarks>
public sealed class ClipTextModel : nn.Module
{
    /// <summary>The state-dict key older transformers versions saved and this model does not need.</summary>
    public const string PositionIdsKey = "text_model.embeddings.position_ids";

    private readonly ClipTextTransformer text_model;

    /// <summary>Builds the model with freshly initialised parameters on <paramref name="device"/> (CPU by default; the
    /// meta device allocates nothing). Load weights with <see cref="FromFolder"/> or <see cref="StateDictLoader"/>.</summary>
    /// <exception cref="ArgumentException">The widths and head count do not fit together.</exception>
    /// <exception cref="ModelConfigException"><c>hidden_act</c> is not a supported activation.</exception>
    /// <exception cref="TensorAllocationException">The parameters do not fit in memory.</exception>
    public ClipTextModel(ClipTextConfig config, Device? device = null) : base(nameof(ClipTextModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.HiddenSize <= 0 || config.NumAttentionHeads <= 0 || config.HiddenSize % config.NumAttentionHeads != 0)
            throw new ArgumentException($"hidden_size {config.HiddenSize} must be a positive multiple of num_attention_heads {config.NumAttentionHeads}.", nameof(config));
        Activations.Require(config.HiddenAct, ActivationNaming.Transformers, $"<{nameof(ClipTextConfig)}>", "hidden_act");
        Config = config;
        text_model = TensorAllocation.GuardModel("text encoder", ClipTextConfigLimits.Estimate(config), () => new ClipTextTransformer(config, device));
        RegisterComponents();
    }

    /// <summary>The configuration the model was built from.</summary>
    public ClipTextConfig Config { get; }

    /// <summary>The token-embedding table [rows, hidden] (<c>text_model.embeddings.token_embedding.weight</c>).</summary>
    public Parameter TokenEmbeddingWeight => text_model.Embeddings.TokenEmbedding.weight!;

    /// <summary>The number of rows of the token-embedding table (49408 unless resized).</summary>
    public long TokenEmbeddingCount => TokenEmbeddingWeight.shape[0];

    /// <summary>Width of the hidden states.</summary>
    public int HiddenSize => Config.HiddenSize;

    /// <summary>Builds the model from a <c>text_encoder/</c> folder (config.json + safetensors weights) and loads the
    /// weights strictly (a stored <c>position_ids</c> buffer is ignored).</summary>
    /// <param name="textEncoderFolder">The folder.</param>
    /// <param name="device">Where the parameters live (CPU by default).</param>
    /// <param name="dtype">The parameter dtype (float32 by default; stored values are converted).</param>
    /// <param name="variant">A weight variant such as "fp16" (<c>model.fp16.safetensors</c>).</param>
    /// <param name="checkFiniteWeights">Refuse weights holding NaN or infinity (<see cref="StateDictLoadOptions.CheckFinite"/>).</param>
    /// <exception cref="InvalidWeightsException">Missing, unexpected or mis-shaped weights.</exception>
    /// <exception cref="InvalidWeightsException">A weight holds NaN or infinity.</exception>
    /// <exception cref="ModelConfigException">The config is missing, invalid or beyond <paramref name="limits"/>.</exception>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static ClipTextModel FromFolder(string textEncoderFolder, Device? device = null, ScalarType? dtype = null, string? variant = null, bool checkFiniteWeights = true,
        ResourceLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(textEncoderFolder);
        using var scope = ResourceLimits.Use(limits);
        var config = ClipTextConfig.Load(Path.Combine(textEncoderFolder, "config.json"));
        var model = new ClipTextModel(config, device);
        try
        {
            if (dtype is { } type && type != ScalarType.Float32) model.to(type);
            StateDictLoader.LoadComponent(model, textEncoderFolder, variant, new StateDictLoadOptions
            {
                KeyMap = key => IsIgnorableKey(key) ? null : key,
                CheckFinite = checkFiniteWeights,
            });
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <summary>Whether a weight file key is one this model deliberately does not hold (<see cref="PositionIdsKey"/>).</summary>
    public static bool IsIgnorableKey(string key) => key == PositionIdsKey;

    /// <summary>The raw token-embedding lookup [B, T, hidden] of <paramref name="inputIds"/> (no positions): the
    /// starting point for splicing learned rows into <c>inputs_embeds</c>.</summary>
    public Tensor TokenEmbeddings(Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ValidateIds(inputIds, nameof(inputIds));
        return text_model.Embeddings.TokenEmbedding.call(inputIds.to_type(ScalarType.Int64));
    }

    /// <summary>
    /// Encodes a batch. Pass <paramref name="inputIds"/> [B, T] (int64), or <paramref name="inputsEmbeds"/> [B, T, hidden]
    /// (token embeddings, positions are added here) together with the ids they stand for: the ids are still needed for
    /// the pooled output (taken at <c>argmax(input_ids)</c>, the first end token, under the legacy
    /// <c>eos_token_id = 2</c> of every SD config — note that an added token with a higher id then wins the argmax, as in
    /// transformers).
    /// </summary>
    /// <param name="inputIds">Token ids [B, T], T ≤ max_position_embeddings.</param>
    /// <param name="inputsEmbeds">Optional token embeddings used instead of looking <paramref name="inputIds"/> up.</param>
    /// <param name="outputHiddenStates">Also return the embeddings and every layer's output.</param>
    /// <param name="attentionMask">Optional padding mask [B, T] (1 = token, 0 = padding) on top of the causal mask;
    /// Stable Diffusion passes none.</param>
    public ClipTextOutput Forward(Tensor? inputIds, Tensor? inputsEmbeds = null, bool outputHiddenStates = false, Tensor? attentionMask = null)
    {
        if (inputIds is null)
            throw new ArgumentNullException(nameof(inputIds), "input_ids are required: the pooled output is taken at the end token they locate (pass them together with inputs_embeds).");
        if (inputIds.dim() != 2) throw new ArgumentException($"input_ids must be [batch, length], got [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        if (inputIds.dtype is not (ScalarType.Int64 or ScalarType.Int32)) throw new ArgumentException($"input_ids must be int64 (or int32) token ids, got {inputIds.dtype}.", nameof(inputIds));
        long batch = inputIds.shape[0], length = inputIds.shape[1];
        if (length < 1 || length > text_model.Embeddings.MaxPositions)
            throw new ArgumentException($"input_ids have length {length}; the model accepts 1 .. {text_model.Embeddings.MaxPositions}.", nameof(inputIds));
        if (inputsEmbeds is not null && (inputsEmbeds.dim() != 3 || inputsEmbeds.shape[0] != batch || inputsEmbeds.shape[1] != length || inputsEmbeds.shape[2] != HiddenSize))
            throw new ArgumentException($"inputs_embeds must be [{batch}, {length}, {HiddenSize}] to match input_ids, got [{string.Join(", ", inputsEmbeds.shape)}].", nameof(inputsEmbeds));
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"attention_mask must be [{batch}, {length}] like input_ids, got [{string.Join(", ", attentionMask.shape)}].", nameof(attentionMask));

        using var scope = torch.NewDisposeScope();
        var ids = inputIds.to_type(ScalarType.Int64);
        var embeds = inputsEmbeds ?? TokenEmbeddings(ids);
        var mask = attentionMask is null ? null : BuildMask(attentionMask, embeds.dtype);
        var hidden = outputHiddenStates ? new List<Tensor>(Config.NumHiddenLayers + 1) : null;
        var last = text_model.Forward(embeds, mask, hidden);

        var poolAt = Config.EosTokenId == 2
            ? ids.argmax(-1)
            : ids.eq(Kept(Config.EosTokenId)).to_type(ScalarType.Int32).argmax(-1);
        var pooled = last.gather(1, poolAt.view(batch, 1, 1).expand(batch, 1, HiddenSize)).squeeze(1);

        return new ClipTextOutput(last.MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope(), hidden?.Select(h => h.MoveToOuterDisposeScope()).ToArray());
    }

    /// <summary>Grows (or shrinks) the token table to <paramref name="rows"/> rows, keeping the existing rows bit for bit;
    /// added rows are zero until written (the concept embedding writes its rows there).</summary>
    public void ResizeTokenEmbeddings(long rows)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "the table needs at least one row");
        var old = TokenEmbeddingWeight;
        if (rows == old.shape[0]) return;
        using var noGrad = torch.no_grad();
        var table = torch.zeros(rows, old.shape[1], dtype: old.dtype, device: old.device);
        long keep = Math.Min(rows, old.shape[0]);
        table.narrow(0, 0, keep).copy_(old.narrow(0, 0, keep));
        text_model.Embeddings.TokenEmbedding.weight = new Parameter(table, old.requires_grad);
        old.Dispose();
    }

    /// <summary>Sets <c>requires_grad</c> on every parameter (TorchSharp modules have no <c>requires_grad_</c>).</summary>
    public void SetRequiresGrad(bool requiresGrad)
    {
        foreach (var p in parameters()) p.requires_grad = requiresGrad;
    }

    /// <summary>
    /// Re-initialises every parameter in place as transformers does for training a CLIP text model from scratch:
    /// embeddings N(0, 0.02²), attention and MLP weights with standard deviations scaled by the width and depth, zero
    /// biases, unit LayerNorms. Draws from libtorch's default generator: seed it first (<c>torch.manual_seed</c>) for
    /// reproducible weights.
    /// </summary>
    /// <param name="factor">transformers' <c>initializer_factor</c> (1.0 in every released CLIP).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="factor"/> is not positive and finite.</exception>
    public void InitializeWeights(double factor = 1.0) => ClipTextInitialization.Apply(this, factor);

    private void ValidateIds(Tensor ids, string name)
    {
        if (ids.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ArgumentException($"{name} must be int64 (or int32) token ids, got {ids.dtype}.", name);
        if (ids.NumberOfElements == 0) return;
        long min = ids.min().item<long>(), max = ids.max().item<long>();
        if (min < 0 || max >= TokenEmbeddingCount)
            throw new ArgumentOutOfRangeException(name, $"token ids must be in 0 .. {TokenEmbeddingCount - 1}, found {(min < 0 ? min : max)}. " +
                "Ids of added concept tokens go through ConceptEmbedding.Embed (or ConceptEmbedding.WriteInto after resizing).");
    }

    private static Tensor BuildMask(Tensor attentionMask, ScalarType dtype)
    {
        long batch = attentionMask.shape[0], length = attentionMask.shape[1];
        var keys = attentionMask.ne(Kept(0));
        var causal = torch.ones(length, length, dtype: ScalarType.Bool, device: attentionMask.device).tril();
        var allowed = causal.unsqueeze(0).logical_and(keys.unsqueeze(1)).unsqueeze(1);
        double blocked = dtype switch
        {
            ScalarType.Float16 => -65504.0,
            ScalarType.BFloat16 => -3.3895313892515355e38,
            ScalarType.Float64 => double.MinValue,
            _ => float.MinValue,
        };
        // Held by `using` so the GC cannot finalize the scalar while libtorch reads it (see ConceptEmbedding.Embed).
        using var value = blocked.ToScalar();
        return torch.zeros(batch, 1, length, length, dtype: dtype, device: attentionMask.device).masked_fill(allowed.logical_not(), value);
    }
}
