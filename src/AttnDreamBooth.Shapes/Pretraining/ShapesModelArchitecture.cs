using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// The networks of a Shapes text-to-image model: a Stable-Diffusion-architecture VAE, CLIP text encoder and
/// conditional U-Net, sized for 64×64 images on two CPU cores. Every part is one of the library's own configs, so
/// the model is written as an ordinary diffusers folder.
/// </summary>
public sealed record ShapesModelArchitecture
{
    /// <summary>Image side in pixels.</summary>
    public int ImageSize { get; init; } = 64;

    /// <summary>The VAE: 64×64 RGB → 16×16×4 latents (three resolution levels, one down-sampling factor of 4).</summary>
    public AutoencoderKLConfig Vae { get; init; } = new()
    {
        BlockOutChannels = [16, 32, 64],
        DownBlockTypes = [AutoencoderKLConfig.DownEncoderBlockType, AutoencoderKLConfig.DownEncoderBlockType, AutoencoderKLConfig.DownEncoderBlockType],
        UpBlockTypes = [AutoencoderKLConfig.UpDecoderBlockType, AutoencoderKLConfig.UpDecoderBlockType, AutoencoderKLConfig.UpDecoderBlockType],
        LayersPerBlock = 1,
        LatentChannels = 4,
        NormNumGroups = 16,
        SampleSize = 64,
    };

    /// <summary>The text encoder: the real CLIP vocabulary (so the real tokenizer works), a narrow and shallow transformer.</summary>
    public ClipTextConfig TextEncoder { get; init; } = new()
    {
        VocabSize = 49408,
        HiddenSize = 128,
        IntermediateSize = 512,
        ProjectionDim = 128,
        NumHiddenLayers = 4,
        NumAttentionHeads = 4,
        MaxPositionEmbeddings = 77,
    };

    /// <summary>The U-Net on 16×16 latents: cross-attention at 16×16 and 8×8 (down and up) and in the 4×4 mid block.</summary>
    public UNetConfig UNet { get; init; } = new()
    {
        SampleSize = 16,
        BlockOutChannels = [64, 128, 128],
        DownBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        UpBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        LayersPerBlock = [1, 1, 1],
        CrossAttentionDim = [128, 128, 128],
        TransformerLayersPerBlock = [1, 1, 1],
        AttentionHeadDim = [4, 8, 8],
        NormNumGroups = 32,
    };

    /// <summary>The architecture of the shipped model.</summary>
    public static ShapesModelArchitecture Default { get; } = new();

    /// <summary>A very small architecture with the same structure, for tests (seconds per step → milliseconds).</summary>
    public static ShapesModelArchitecture Tiny { get; } = new()
    {
        ImageSize = 32,
        Vae = Default.Vae with { BlockOutChannels = [8, 8, 8], NormNumGroups = 4, SampleSize = 32 },
        TextEncoder = Default.TextEncoder with { HiddenSize = 16, IntermediateSize = 32, ProjectionDim = 16, NumHiddenLayers = 1, NumAttentionHeads = 2 },
        UNet = Default.UNet with
        {
            SampleSize = 8,
            BlockOutChannels = [8, 16, 16],
            LayersPerBlock = [1, 1, 1],
            CrossAttentionDim = [16, 16, 16],
            AttentionHeadDim = [2, 2, 2],
            NormNumGroups = 4,
        },
    };

    /// <summary>Checks that the parts fit together (latent size, channels, text width) and each config is valid.</summary>
    /// <exception cref="ArgumentException">A part is invalid or the parts do not fit together.</exception>
    public void Validate()
    {
        Vae.Validate();
        try
        {
            UNet.Validate("<ShapesModelArchitecture.UNet>");
        }
        catch (IO.ModelConfigException ex)
        {
            throw new ArgumentException($"Invalid U-Net configuration: {ex.Message}", nameof(UNet), ex);
        }
        if (ImageSize <= 0 || ImageSize % Vae.DownsampleFactor != 0)
            throw new ArgumentException($"ImageSize {ImageSize} must be a positive multiple of the VAE factor {Vae.DownsampleFactor}.", nameof(ImageSize));
        int latent = ImageSize / Vae.DownsampleFactor;
        if (UNet.SampleSize != latent)
            throw new ArgumentException($"The U-Net sample size {UNet.SampleSize} must equal the latent size {latent} (ImageSize / VAE factor).", nameof(UNet));
        if (latent % (1 << (UNet.BlockCount - 1)) != 0)
            throw new ArgumentException($"The latent size {latent} must be divisible by the U-Net's down-sampling factor {1 << (UNet.BlockCount - 1)}.", nameof(UNet));
        if (UNet.InChannels != Vae.LatentChannels || UNet.OutChannels != Vae.LatentChannels)
            throw new ArgumentException($"The U-Net's in/out channels ({UNet.InChannels}/{UNet.OutChannels}) must equal the VAE's latent channels {Vae.LatentChannels}.", nameof(UNet));
        if (UNet.CrossAttentionDim.Any(d => d != TextEncoder.HiddenSize))
            throw new ArgumentException($"The U-Net's cross_attention_dim [{string.Join(", ", UNet.CrossAttentionDim)}] must equal the text encoder's hidden size {TextEncoder.HiddenSize}.", nameof(UNet));
        if (TextEncoder.HiddenSize % TextEncoder.NumAttentionHeads != 0)
            throw new ArgumentException($"The text encoder's hidden size {TextEncoder.HiddenSize} must be divisible by its {TextEncoder.NumAttentionHeads} heads.", nameof(TextEncoder));
    }
}
