using AttnDreamBooth.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// The Stable Diffusion VAE (diffusers <c>AutoencoderKL</c>): <c>encoder</c> + <c>quant_conv</c> give the
/// posterior over latents, <c>post_quant_conv</c> + <c>decoder</c> map latents back to images. Images are in
/// [-1, 1]; latents are unscaled (the caller multiplies by <see cref="AutoencoderKLConfig.ScalingFactor"/> after
/// encoding and divides before decoding). Parameter names equal diffusers' state-dict keys.
/// </summary>
public sealed class AutoencoderKL : nn.Module<Tensor, Tensor>
{
    private readonly Encoder encoder;
    private readonly Decoder decoder;
    private readonly Conv2d quant_conv;
    private readonly Conv2d post_quant_conv;
    private VaeTilingOptions? _tiling;

    /// <summary>Builds the model of <paramref name="config"/> with every parameter created on
    /// <paramref name="device"/> (the meta device allocates nothing). Weights are uninitialised for use; load them
    /// with <see cref="FromFolder"/> or <see cref="StateDictLoader"/>.</summary>
    /// <exception cref="ArgumentException">When the configuration is inconsistent.</exception>
    /// <exception cref="TensorAllocationException">The parameters do not fit in memory.</exception>
    public AutoencoderKL(AutoencoderKLConfig config, Device? device = null) : base(nameof(AutoencoderKL))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        (encoder, decoder) = TensorAllocation.GuardModel("VAE", AutoencoderKLConfigLimits.Estimate(config),
            () => (new Encoder(config, device), new Decoder(config, device)));
        quant_conv = nn.Conv2d(2 * config.LatentChannels, 2 * config.LatentChannels, kernel_size: 1, device: device);
        post_quant_conv = nn.Conv2d(config.LatentChannels, config.LatentChannels, kernel_size: 1, device: device);
        Nnpack.TurnOff();
        RegisterComponents();
    }

    /// <summary>The configuration the model was built from.</summary>
    public AutoencoderKLConfig Config { get; }

    /// <summary>The <c>scaling_factor</c> of the configuration (not applied by this class).</summary>
    public double ScalingFactor => Config.ScalingFactor;

    /// <summary>The spatial factor between images and latents (8 for SD).</summary>
    public int DownsampleFactor => Config.DownsampleFactor;

    /// <summary>The encoder module (<c>encoder.*</c>).</summary>
    internal Encoder Encoder => encoder;

    /// <summary>The decoder module (<c>decoder.*</c>).</summary>
    internal Decoder Decoder => decoder;

    /// <summary>Sliced mode: encode and decode a batch one image at a time, so peak activation memory is that of
    /// one image. Results equal batched ones up to float rounding. Off by default.</summary>
    public bool UseSlicing { get; set; }

    /// <summary>Tiled decoding options, or null (the default) for decoding latents in one piece.</summary>
    internal VaeTilingOptions? Tiling
    {
        get => _tiling;
        set
        {
            _ = value?.Geometry(DownsampleFactor);
            _tiling = value;
        }
    }

    /// <summary>
    /// Turns tiled decoding on (diffusers' <c>enable_tiling</c>): latents larger than one tile are decoded tile by
    /// tile; tiles overlap and each tile's first rows/columns are blended linearly with the tile above/left, so memory
    /// stays bounded by the tile size. The result is close to, not equal to, untiled decoding (each tile's mid-block
    /// attention and GroupNorm statistics see only that tile).
    /// </summary>
    /// <param name="tileSampleSize">The tile edge in image pixels (default: the config's <c>sample_size</c>, as diffusers).</param>
    /// <param name="overlapFactor">The fraction of a tile shared with its neighbour (diffusers: 0.25).</param>
    /// <exception cref="ArgumentOutOfRangeException">The tile is not positive or the overlap not in [0, 1).</exception>
    /// <exception cref="ArgumentException">The tile is smaller than one latent pixel or leaves no stride between tiles.</exception>
    public void EnableTiling(int? tileSampleSize = null, double overlapFactor = 0.25) =>
        Tiling = new VaeTilingOptions(tileSampleSize ?? Config.SampleSize, overlapFactor);

    /// <summary>Turns tiled decoding off (the default): latents are decoded in one piece.</summary>
    public void DisableTiling() => Tiling = null;

    /// <summary>Whether tiled decoding is on (<see cref="EnableTiling"/>).</summary>
    public bool IsTiling => Tiling is not null;

    /// <summary>Loads a diffusers VAE folder (<c>config.json</c> + <c>diffusion_pytorch_model[.variant].safetensors</c>,
    /// possibly sharded) strictly: every weight must match a parameter by name and shape and vice versa. Legacy
    /// attention names (<c>query</c>/<c>key</c>/<c>value</c>/<c>proj_attn</c>) are renamed while loading.</summary>
    /// <param name="vaeFolder">The <c>vae</c> folder of a pipeline.</param>
    /// <param name="device">Where the parameters live (default CPU).</param>
    /// <param name="dtype">The parameter dtype (default float32); stored weights are converted.</param>
    /// <param name="variant">A weight variant such as <c>fp16</c>, or null.</param>
    /// <exception cref="DirectoryNotFoundException">When the folder does not exist.</exception>
    /// <exception cref="ModelConfigException">When <c>config.json</c> is missing or invalid.</exception>
    /// <param name="checkFiniteWeights">Refuse weights holding NaN or infinity (<see cref="StateDictLoadOptions.CheckFinite"/>).</param>
    /// <exception cref="InvalidWeightsException">When the weights do not match the model.</exception>
    /// <exception cref="InvalidWeightsException">When a weight holds NaN or infinity.</exception>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static AutoencoderKL FromFolder(string vaeFolder, Device? device = null, ScalarType? dtype = null, string? variant = null, bool checkFiniteWeights = true,
        ResourceLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(vaeFolder);
        using var scope = ResourceLimits.Use(limits);
        string folder = Path.GetFullPath(vaeFolder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"The VAE folder '{folder}' does not exist.");
        var config = AutoencoderKLConfig.Load(Path.Combine(folder, "config.json"));
        var model = new AutoencoderKL(config, device);
        try
        {
            if (dtype is { } t) model.to(t);
            StateDictLoader.LoadComponent(model, folder, variant, new StateDictLoadOptions { Strict = true, KeyMap = VaeWeightNames.ToCurrentName, CheckFinite = checkFiniteWeights });
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Encodes images [B, in_channels, H, W] in [-1, 1] to latents [B, latent_channels, H / f, W / f]: a draw from the
    /// posterior with <paramref name="generator"/> (diffusers' <c>latent_dist.sample(generator)</c>; the noise is drawn
    /// on the generator's device, so a seeded CPU generator gives the same latents on any device), or its mode (the
    /// mean) without one. Not multiplied by <see cref="ScalingFactor"/>: multiply to get what the U-Net trains on.
    /// </summary>
    /// <exception cref="ArgumentException">When the images are not [B, in_channels, H, W].</exception>
    public Tensor EncodeLatents(Tensor images, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        using var posterior = Encode(images);
        var latents = generator is null ? posterior.Mode() : posterior.Sample(generator);
        return latents.MoveToOuterDisposeScope();
    }

    /// <summary>Encodes images [B, in_channels, H, W] in [-1, 1] to the posterior over latents
    /// [B, latent_channels, H / f, W / f]. Dispose the result (or let the enclosing dispose scope do it).</summary>
    /// <exception cref="ArgumentException">When the images are not [B, in_channels, H, W].</exception>
    public DiagonalGaussianDistribution Encode(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4 || images.shape[1] != Config.InChannels)
            throw new ArgumentException($"Encode expects images [B, {Config.InChannels}, H, W] in [-1, 1], got [{string.Join(", ", images.shape)}].", nameof(images));
        // The distribution's tensors must be created outside the scope, which disposes everything it tracks.
        return new DiagonalGaussianDistribution(EncodeMoments(images));
    }

    private Tensor EncodeMoments(Tensor images)
    {
        using var scope = NewDisposeScope();
        // Computes in the weights' dtype (half precision when frozen that way) and answers in the caller's.
        var callerType = images.dtype;
        bool callerIsFloating = images.is_floating_point();
        var modelType = quant_conv.weight!.dtype;
        if (callerIsFloating && callerType != modelType) images = images.to_type(modelType);
        var h = UseSlicing && images.shape[0] > 1
            ? cat(images.split(1, dim: 0).Select(x => encoder.call(x)).ToArray(), dim: 0)
            : encoder.call(images);
        var moments = quant_conv.call(h);
        if (moments.dtype != callerType && callerIsFloating) moments = moments.to_type(callerType);
        return moments.MoveToOuterDisposeScope();
    }

    /// <summary>Decodes unscaled latents [B, latent_channels, h, w] to images [B, out_channels, h * f, w * f]
    /// (nominally in [-1, 1]; not clamped, as the reference). Honours <see cref="UseSlicing"/> and
    /// <see cref="Tiling"/>.</summary>
    /// <exception cref="ArgumentException">When the latents are not [B, latent_channels, h, w].</exception>
    public Tensor Decode(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (latents.dim() != 4 || latents.shape[1] != Config.LatentChannels)
            throw new ArgumentException($"Decode expects latents [B, {Config.LatentChannels}, h, w], got [{string.Join(", ", latents.shape)}].", nameof(latents));
        using var scope = NewDisposeScope();
        // Computes in the weights' dtype (half precision when frozen that way) and answers in the caller's.
        var callerType = latents.dtype;
        bool callerIsFloating = latents.is_floating_point();
        var modelType = post_quant_conv.weight!.dtype;
        if (callerIsFloating && callerType != modelType) latents = latents.to_type(modelType);
        var images = UseSlicing && latents.shape[0] > 1
            ? cat(latents.split(1, dim: 0).Select(DecodeBatch).ToArray(), dim: 0)
            : DecodeBatch(latents);
        if (images.dtype != callerType && callerIsFloating) images = images.to_type(callerType);
        return images.MoveToOuterDisposeScope();
    }

    /// <summary>Encodes and decodes the posterior's mode (diffusers' <c>forward</c> without sampling).</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        using var posterior = Encode(images);
        return Decode(posterior.Mean).MoveToOuterDisposeScope();
    }

    private Tensor DecodeBatch(Tensor latents)
    {
        if (_tiling is { } tiling)
        {
            var geometry = tiling.Geometry(DownsampleFactor);
            if (latents.shape[2] > geometry.LatentTile || latents.shape[3] > geometry.LatentTile)
                return VaeTiledDecoder.Decode(latents, geometry, DecodeTile);
        }
        return DecodeTile(latents);
    }

    private Tensor DecodeTile(Tensor latents) => decoder.call(post_quant_conv.call(latents));
}
