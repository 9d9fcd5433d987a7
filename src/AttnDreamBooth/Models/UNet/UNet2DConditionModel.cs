using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.UNet;

using Activations = AttnDreamBooth.Models.Blocks.Activations;
using Attention = AttnDreamBooth.Models.Attention.Attention;

/// <summary>
/// The Stable Diffusion 1.x/2.x noise-prediction U-Net (diffusers' <c>UNet2DConditionModel</c> for the configurations
/// those models use), with diffusers' parameter names so <c>unet/diffusion_pytorch_model.safetensors</c> loads
/// strictly. <c>forward(sample [B, in, H, W], timestep (0-dim or [B], integer or float), encoder_hidden_states
/// [B, 77, cross_attention_dim])</c> returns the prediction <c>[B, out, H, W]</c>.
/// <para>
/// Every attention layer delegates to an <see cref="IAttentionProcessor"/>; processors are listed by module path in
/// <see cref="AttentionProcessors"/> and replaced with the <c>SetAttentionProcessor</c> overloads (all layers, by path,
/// or by a selector over <see cref="AttentionLayerInfo"/>).
/// </para>
/// </summary>
public sealed partial class UNet2DConditionModel : Module<Tensor, Tensor, Tensor, Tensor>, IAttentionProcessorHost, IHookedParameterHost
{
    private readonly Conv2d conv_in;
    private readonly Timesteps time_proj;
    private readonly TimestepEmbedding time_embedding;
    private readonly ModuleList<UNetDownBlock> down_blocks;
    private readonly UNetMidBlock2DCrossAttn mid_block;
    private readonly ModuleList<UNetUpBlock> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly Func<Tensor, Tensor> conv_act;
    private readonly Conv2d conv_out;
    private readonly Attention[] _attentionLayers;
    private readonly int _upsamplers;
    private readonly bool[] _downUsesText;
    private readonly bool[] _upUsesText;
    private readonly HookedParameters _hooked = new();

    /// <summary>Builds the model with freshly initialised parameters on <paramref name="device"/> (the meta device
    /// allocates nothing, for shape checks).</summary>
    /// <exception cref="ModelConfigException">The configuration is inconsistent.</exception>
    /// <exception cref="TensorAllocationException">The parameters do not fit in memory.</exception>
    public UNet2DConditionModel(UNetConfig config, Device? device = null) : base(nameof(UNet2DConditionModel))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        try
        {
            var channels = config.BlockOutChannels;
            int n = channels.Count;
            int timeEmbedDim = config.TimeEmbedDim;
            int groups = config.NormNumGroups;
            double eps = config.NormEps;
            var act = Activations.Get(config.ActFn, ActivationNaming.Diffusers, "act_fn");

            conv_in = Conv2d(config.InChannels, channels[0], config.ConvInKernel, stride: 1, padding: (config.ConvInKernel - 1) / 2, device: device);
            time_proj = new Timesteps(channels[0], config.FlipSinToCos, config.FreqShift);
            time_embedding = new TimestepEmbedding(channels[0], timeEmbedDim, device, act);

            var downs = new List<UNetDownBlock>();
            int outputChannel = channels[0];
            for (int i = 0; i < n; i++)
            {
                int inputChannel = outputChannel;
                outputChannel = channels[i];
                bool addDownsample = i < n - 1;
                downs.Add(config.DownBlockTypes[i] switch
                {
                    "CrossAttnDownBlock2D" => new CrossAttnDownBlock2D(inputChannel, outputChannel, timeEmbedDim, config.LayersPerBlock[i],
                        config.TransformerLayersPerBlock[i], config.HeadsPerDownBlock[i], config.CrossAttentionDim[i], groups, eps, addDownsample,
                        config.DownsamplePadding, config.UseLinearProjection, config.UpcastAttention, config.Dropout, device, act),
                    _ => new DownBlock2D(inputChannel, outputChannel, timeEmbedDim, config.LayersPerBlock[i], groups, eps, addDownsample,
                        config.DownsamplePadding, config.Dropout, device, act),
                });
            }
            down_blocks = new ModuleList<UNetDownBlock>(downs.ToArray());

            mid_block = new UNetMidBlock2DCrossAttn(channels[n - 1], timeEmbedDim, config.HeadsMidBlock, config.CrossAttentionDim[n - 1], groups, eps,
                config.MidBlockScaleFactor, config.UseLinearProjection, config.UpcastAttention, 1, config.TransformerLayersPerBlock[n - 1],
                config.Dropout, device, act);

            var reversedChannels = channels.Reverse().ToArray();
            var reversedHeads = config.HeadsPerUpBlock;
            var reversedLayers = config.LayersPerBlock.Reverse().ToArray();
            var reversedCross = config.CrossAttentionDim.Reverse().ToArray();
            var reversedTransformerLayers = config.TransformerLayersPerBlock.Reverse().ToArray();
            var ups = new List<UNetUpBlock>();
            outputChannel = reversedChannels[0];
            for (int i = 0; i < n; i++)
            {
                int prevOutputChannel = outputChannel;
                outputChannel = reversedChannels[i];
                int inputChannel = reversedChannels[Math.Min(i + 1, n - 1)];
                bool addUpsample = i < n - 1;
                ups.Add(config.UpBlockTypes[i] switch
                {
                    "CrossAttnUpBlock2D" => new CrossAttnUpBlock2D(inputChannel, outputChannel, prevOutputChannel, timeEmbedDim, reversedLayers[i] + 1,
                        reversedTransformerLayers[i], reversedHeads[i], reversedCross[i], groups, eps, addUpsample, config.UseLinearProjection,
                        config.UpcastAttention, config.Dropout, device, act),
                    _ => new UpBlock2D(inputChannel, outputChannel, prevOutputChannel, timeEmbedDim, reversedLayers[i] + 1, groups, eps, addUpsample,
                        config.Dropout, device, act),
                });
            }
            up_blocks = new ModuleList<UNetUpBlock>(ups.ToArray());
            _upsamplers = ups.Count(u => u.HasUpsampler);

            conv_norm_out = GroupNormalization.Create(groups, channels[0], eps, device);
            conv_act = act;
            conv_out = Conv2d(channels[0], config.OutChannels, config.ConvOutKernel, stride: 1, padding: (config.ConvOutKernel - 1) / 2, device: device);
            RegisterComponents();

            _attentionLayers = NameAttentionLayers();
            // Blocks without attention ignore the text states; keeping them out of a checkpoint's inputs avoids building
            // (and recomputing) a graph for them when only the text states require gradients (stage 1).
            _downUsesText = down_blocks.Select(b => b.modules().OfType<Attention>().Any()).ToArray();
            _upUsesText = up_blocks.Select(b => b.modules().OfType<Attention>().Any()).ToArray();
            AttentionLayers = _attentionLayers.Select(a => a.Info).ToArray();
        }
        catch (Exception ex) when (TensorAllocation.IsFailure(ex))
        {
            throw TensorAllocation.ModelFailed("U-Net", UNetConfigLimits.Estimate(config), ex);
        }
    }

    /// <summary>The configuration the model was built from.</summary>
    public UNetConfig Config { get; }

    /// <summary>Spatial factor between the input and the deepest level (<c>2^(number of downsamplers)</c>); H and W of
    /// the input should be multiples of it (other sizes work, as in diffusers, by upsampling to the skip's size).</summary>
    public int DownsampleFactor => 1 << _upsamplers;

    /// <summary>Loads a diffusers <c>unet</c> folder (<c>config.json</c> + safetensors weights, optionally a variant such
    /// as "fp16"), strictly: every parameter must be present with its shape.</summary>
    /// <exception cref="ModelConfigException">The config is missing or invalid.</exception>
    /// <exception cref="InvalidWeightsException">The weights do not match the module.</exception>
    /// <param name="unetFolder">The folder.</param>
    /// <param name="device">Where the parameters live (CPU by default).</param>
    /// <param name="dtype">The parameter dtype (float32 by default).</param>
    /// <param name="variant">A weight variant such as "fp16".</param>
    /// <param name="checkFiniteWeights">Refuse weights holding NaN or infinity (<see cref="StateDictLoadOptions.CheckFinite"/>).</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static UNet2DConditionModel FromFolder(string unetFolder, Device? device = null, ScalarType? dtype = null, string? variant = null, bool checkFiniteWeights = true,
        ResourceLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(unetFolder);
        using var scope = ResourceLimits.Use(limits);
        var config = UNetConfig.Load(Path.Combine(unetFolder, "config.json"));
        var model = new UNet2DConditionModel(config, device);
        try
        {
            if (dtype is { } t) model.to(t);
            StateDictLoader.LoadComponent(model, unetFolder, variant, new StateDictLoadOptions { CheckFinite = checkFiniteWeights });
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Predicts noise (or v) for <paramref name="sample"/> <c>[B, in_channels, H, W]</c> at
    /// <paramref name="timestep"/> (0-dim or [1] broadcast to the batch, or [B]; integer or float) conditioned on
    /// <paramref name="encoderHiddenStates"/> <c>[B, tokens, cross_attention_dim]</c>.</summary>
    public override Tensor forward(Tensor sample, Tensor timestep, Tensor encoderHiddenStates)
    {
        ArgumentNullException.ThrowIfNull(sample);
        ArgumentNullException.ThrowIfNull(timestep);
        ArgumentNullException.ThrowIfNull(encoderHiddenStates);
        if (sample.dim() != 4 || sample.shape[1] != Config.InChannels)
            throw new ArgumentException($"sample must be [B, {Config.InChannels}, H, W], got [{string.Join(", ", sample.shape)}].", nameof(sample));
        long batch = sample.shape[0];
        if (encoderHiddenStates.dim() != 3 || encoderHiddenStates.shape[0] != batch || encoderHiddenStates.shape[2] != Config.CrossAttentionDim[0])
            throw new ArgumentException($"encoder_hidden_states must be [{batch}, tokens, {Config.CrossAttentionDim[0]}], got [{string.Join(", ", encoderHiddenStates.shape)}].", nameof(encoderHiddenStates));
        if (timestep.dim() > 1 || (timestep.dim() == 1 && timestep.shape[0] != 1 && timestep.shape[0] != batch))
            throw new ArgumentException($"timestep must be 0-dim, [1] or [{batch}], got [{string.Join(", ", timestep.shape)}].", nameof(timestep));
        if (timestep.dtype == ScalarType.Bool || timestep.is_complex())
            throw new ArgumentException($"timestep must be an integer or floating tensor, got {timestep.dtype}.", nameof(timestep));

        foreach (var processor in _attentionLayers.Select(a => a.Processor).Distinct(ReferenceEqualityComparer.Instance).Cast<IAttentionProcessor>())
            processor.OnForwardStarting();

        using var scope = NewDisposeScope();
        int factor = DownsampleFactor;
        bool forwardUpsampleSize = sample.shape[2] % factor != 0 || sample.shape[3] % factor != 0;

        // The model computes in its weights' dtype (e.g. bfloat16 when its frozen weights are held in half precision)
        // and answers in the caller's dtype, so a float32 loss needs no casts outside.
        var callerType = sample.dtype;
        bool callerIsFloating = sample.is_floating_point();
        var modelType = conv_in.weight!.dtype;
        if (callerIsFloating && callerType != modelType) sample = sample.to_type(modelType);

        var t = timestep.reshape(-1).to(sample.device).expand(batch);
        if (Config.CenterInputSample) sample = sample.mul(Kept(2.0)).sub(Kept(1.0));
        var tEmb = time_proj.call(t).to_type(sample.dtype);
        var emb = time_embedding.call(tEmb);

        var h = NarrowChannelConvolution.Apply(conv_in, sample);
        var skips = new List<Tensor> { h };
        var checkpoint = GradientCheckpointing && is_grad_enabled()
            ? new BlockCheckpointRunner(_attentionLayers.Select(a => a.Processor).OfType<IAttentionMapRecorder>())
            : null;
        for (int i = 0; i < down_blocks.Count; i++) h = RunDownBlock(i, h, emb, encoderHiddenStates, skips, checkpoint);
        h = RunMidBlock(h, emb, encoderHiddenStates, checkpoint);
        for (int i = 0; i < up_blocks.Count; i++)
        {
            int take = up_blocks[i].ResnetCount;
            var consumed = skips.GetRange(skips.Count - take, take);
            skips.RemoveRange(skips.Count - take, take);
            long[]? upsampleSize = forwardUpsampleSize && up_blocks[i].HasUpsampler && skips.Count > 0 ? [skips[^1].shape[2], skips[^1].shape[3]] : null;
            h = RunUpBlock(i, h, consumed, emb, encoderHiddenStates, upsampleSize, checkpoint);
        }
        h = NarrowChannelConvolution.Apply(conv_out, conv_act(conv_norm_out.call(h)));
        if (h.dtype != callerType && callerIsFloating) h = h.to_type(callerType);
        return h.MoveToOuterDisposeScope();
    }
}
