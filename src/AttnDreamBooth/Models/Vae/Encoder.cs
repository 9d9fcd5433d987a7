using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// The VAE encoder (diffusers <c>Encoder</c> with <c>double_z</c>): <c>conv_in → down_blocks → mid_block →
/// conv_norm_out → act → conv_out</c>. Maps images [B, in, H, W] to the posterior's moments before
/// <c>quant_conv</c>: [B, 2 * latent_channels, H / f, W / f].
/// </summary>
internal sealed class Encoder : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in;
    private readonly ModuleList<DownEncoderBlock2D> down_blocks;
    private readonly VaeMidBlock2D mid_block;
    private readonly GroupNorm conv_norm_out;
    private readonly Conv2d conv_out;
    private readonly Func<Tensor, Tensor> _activation;
    private readonly int _inChannels;

    /// <summary>Builds the encoder of <paramref name="config"/> with every parameter on <paramref name="device"/>.</summary>
    public Encoder(AutoencoderKLConfig config, Device? device = null) : base(nameof(Encoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var channels = config.BlockOutChannels;
        _inChannels = config.InChannels;
        _activation = Activations.Get(config.ActFn, ActivationNaming.Diffusers, "act_fn");
        conv_in = nn.Conv2d(config.InChannels, channels[0], kernel_size: 3, stride: 1, padding: 1, device: device);
        down_blocks = nn.ModuleList(Enumerable.Range(0, channels.Count)
            .Select(i => new DownEncoderBlock2D(i == 0 ? channels[0] : channels[i - 1], channels[i], config.LayersPerBlock,
                addDownsample: i < channels.Count - 1, config.NormNumGroups, _activation, device)).ToArray());
        mid_block = new VaeMidBlock2D(channels[^1], config.NormNumGroups, _activation, config.MidBlockAddAttention, device);
        conv_norm_out = GroupNormalization.Create(config.NormNumGroups, channels[^1], VaeConstants.NormEps, device);
        conv_out = nn.Conv2d(channels[^1], 2 * config.LatentChannels, kernel_size: 3, stride: 1, padding: 1, device: device);
        RegisterComponents();
    }

    /// <summary>Encodes images [B, in_channels, H, W] to the encoder output (before <c>quant_conv</c>).</summary>
    public override Tensor forward(Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dim() != 4 || images.shape[1] != _inChannels)
            throw new ArgumentException($"The VAE encoder expects images [B, {_inChannels}, H, W], got [{string.Join(", ", images.shape)}].", nameof(images));
        using var scope = NewDisposeScope();
        var h = NarrowChannelConvolution.Apply(conv_in, images);
        foreach (var block in down_blocks) h = block.call(h);
        h = mid_block.call(h);
        h = NarrowChannelConvolution.Apply(conv_out, _activation(conv_norm_out.call(h)));
        return h.MoveToOuterDisposeScope();
    }
}
