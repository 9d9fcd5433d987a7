using AttnDreamBooth.Models.Blocks;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.UNet;

/// <summary>diffusers' <c>UpBlock2D</c>: resnets over [hidden, skip] concatenations, then an optional upsampler.</summary>
internal sealed class UpBlock2D : UNetUpBlock
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;

    /// <summary>Creates the block.</summary>
    /// <param name="inChannels">Channels of the deepest skip state this block consumes (its last resnet's skip).</param>
    /// <param name="outChannels">Channels of the block.</param>
    /// <param name="prevOutputChannels">Channels of the incoming hidden states.</param>
    /// <param name="tembChannels">Width of the time embedding.</param>
    /// <param name="layers">Number of resnets (<c>layers_per_block + 1</c>).</param>
    /// <param name="groups">GroupNorm groups.</param>
    /// <param name="eps">GroupNorm epsilon.</param>
    /// <param name="addUpsample">Whether an upsampler follows.</param>
    /// <param name="dropout">Dropout in the resnets.</param>
    /// <param name="device">Parameter device.</param>
    /// <param name="activation">The U-Net's <c>act_fn</c> (SiLU when null).</param>
    public UpBlock2D(int inChannels, int outChannels, int prevOutputChannels, int tembChannels, int layers, int groups, double eps,
        bool addUpsample, double dropout = 0.0, Device? device = null, Func<Tensor, Tensor>? activation = null) : base(nameof(UpBlock2D))
    {
        resnets = new ModuleList<ResnetBlock2D>(Enumerable.Range(0, layers).Select(i =>
        {
            int skip = i == layers - 1 ? inChannels : outChannels;
            int input = i == 0 ? prevOutputChannels : outChannels;
            return new ResnetBlock2D(input + skip, outChannels, tembChannels, groups, eps, dropout, 1.0, device, activation);
        }).ToArray());
        if (addUpsample) upsamplers = new ModuleList<Upsample2D>(new Upsample2D(outChannels, outChannels, device));
        RegisterComponents();
    }

    /// <inheritdoc />
    public override int ResnetCount => resnets.Count;

    /// <inheritdoc />
    public override bool HasUpsampler => upsamplers is not null;

    /// <inheritdoc />
    public override Tensor forward(Tensor hiddenStates, IReadOnlyList<Tensor> skipStates, Tensor temb, Tensor? encoderHiddenStates, long[]? upsampleSize)
    {
        UpBlockHelpers.CheckSkips(skipStates, resnets.Count);
        var h = hiddenStates;
        for (int i = 0; i < resnets.Count; i++)
        {
            h = resnets[i].call(cat([h, skipStates[skipStates.Count - 1 - i]], 1), temb);
        }
        if (upsamplers is not null)
        {
            foreach (var up in upsamplers) h = up.call(h, upsampleSize);
        }
        return h;
    }
}

internal static class UpBlockHelpers
{
    public static void CheckSkips(IReadOnlyList<Tensor> skipStates, int needed)
    {
        ArgumentNullException.ThrowIfNull(skipStates);
        if (skipStates.Count < needed) throw new ArgumentException($"The up block needs {needed} skip states, got {skipStates.Count}.", nameof(skipStates));
    }
}
