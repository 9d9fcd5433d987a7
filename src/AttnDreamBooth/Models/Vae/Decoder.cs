using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// The VAE decoder (diffusers <c>Decoder</c>): <c>conv_in → mid_block → up_blocks → conv_norm_out → act →
/// conv_out</c>. Maps latents after <c>post_quant_conv</c> [B, latent_channels, h, w] to images
/// [B, out_channels, h * f, w * f] (not clamped).
/// </summary>
internal sealed class Decoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly VaeMidBlock2D mid_block;
    private readonly ModuleList<UpDecoderBlock2D> up_blocks;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;
    private readonly Func<Tensor, Tensor> _activation;
    private readonly int _latentChannels;

    /// <summary>Builds the decoder of <paramref name="config"/> with every parameter on <paramref name="device"/>.</summary>
    public Decoder(AutoencoderKLConfig config, Device? device = null) : base(nameof(Decoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var reversed = config.BlockOutChannels.Reverse().ToArray();
        _latentChannels = config.LatentChannels;
        _activation = Activations.Get(config.ActFn, ActivationNaming.Diffusers, "act_fn");
        conv_in = nn.Conv2d(config.LatentChannels, reversed[0], kernel_size: 3, stride: 1, padding: 1, device: device);
        mid_block = new VaeMidBlock2D(reversed[0], config.NormNumGroups, _activation, config.MidBlockAddAttention, device);
        up_blocks = nn.ModuleList(Enumerable.Range(0, reversed.Length)
            .Select(i => new UpDecoderBlock2D(i == 0 ? reversed[0] : reversed[i - 1], reversed[i], config.LayersPerBlock + 1,
                addUpsample: i < reversed.Length - 1, config.NormNumGroups, _activation, device)).ToArray());
        conv_norm_out = GroupNormalization.Create(config.NormNumGroups, reversed[^1], VaeConstants.NormEps, device);
        conv_out = nn.Conv2d(reversed[^1], config.OutChannels, kernel_size: 3, stride: 1, padding: 1, device: device);
        RegisterComponents();
    }

    /// <summary>Decodes latents (after <c>post_quant_conv</c>) [B, latent_channels, h, w] to images.</summary>
    public override Tensor forward(Tensor latents)
    {
        ArgumentNullException.ThrowIfNull(latents);
        if (latents.dim() != 4 || latents.shape[1] != _latentChannels)
            throw new ArgumentException($"The VAE decoder expects latents [B, {_latentChannels}, h, w], got [{string.Join(", ", latents.shape)}].", nameof(latents));
        using var scope = NewDisposeScope();
        var h = NarrowChannelConvolution.Apply(conv_in, latents);
        h = mid_block.call(h);
        foreach (var block in up_blocks) h = block.call(h);
        h = NarrowChannelConvolution.Apply(conv_out, _activation(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
