using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>
/// Runs a spatial convolution with an output-channel count that is not a multiple of 16 (the U-Net's and VAE's
/// <c>conv_out</c>: 4, 8 or 3 channels; a CLIP patch embedding of width 24; every convolution of a model with 8-channel
/// blocks, such as the Shapes world's tiny one) so that it is right on every CPU; the models call every spatial
/// convolution through it.
/// libtorch 2.10's CPU convolution (kernel larger than 1×1) is wrong on AVX-512 CPUs for such channel counts in two
/// places, measured on an AMD EPYC with avx512_bf16: the float32 gradient with respect to the input (wrong values,
/// non-deterministic, sometimes NaN/Inf) and the bfloat16 forward pass (relative error 0.2–0.35 against float32, where
/// 16 and 32 channels give 0.003). The float32 forward pass is exact. Padding the weight with zero filters to a multiple
/// of 32 channels and dropping those channels from the output gives the same result on the correct kernel path; the
/// padded filters receive no gradient that reaches the real weight.
/// </summary>
internal static class NarrowChannelConvolution
{
    /// <summary>Output channels are padded to a multiple of this (covers 16 float32 and 32 bfloat16 lanes of AVX-512).</summary>
    private const long Multiple = 32;

    /// <summary>Whether <see cref="Apply"/> may compute <paramref name="conv"/> itself instead of calling the module (its
    /// forward hooks then do not run): a spatial kernel with an output-channel count that is not a multiple of 16.</summary>
    public static bool Reroutes(Conv2d conv)
    {
        ArgumentNullException.ThrowIfNull(conv);
        var shape = conv.weight!.shape;
        return shape[0] % 16 != 0 && (shape[2] > 1 || shape[3] > 1);
    }

    /// <summary><paramref name="conv"/>(<paramref name="input"/>) for a dilation-1, groups-1 convolution with the given
    /// stride and symmetric padding (the module's own construction arguments).</summary>
    public static Tensor Apply(Conv2d conv, Tensor input, long stride = 1, long? padding = null)
    {
        var weight = conv.weight!;
        long outChannels = weight.shape[0];
        bool affected = Reroutes(conv)
            && (weight.dtype == ScalarType.BFloat16 || (is_grad_enabled() && input.requires_grad));
        if (!affected) return conv.call(input);
        using var scope = NewDisposeScope();
        long extra = Multiple - outChannels % Multiple;
        var paddedWeight = cat([weight, zeros([extra, weight.shape[1], weight.shape[2], weight.shape[3]], weight.dtype, weight.device)], 0);
        var bias = conv.bias;
        var paddedBias = bias is null ? null : cat([bias, zeros([extra], bias.dtype, bias.device)], 0);
        long padH = padding ?? (weight.shape[2] - 1) / 2, padW = padding ?? (weight.shape[3] - 1) / 2;
        var output = nn.functional.conv2d(input, paddedWeight, paddedBias, strides: [stride, stride], padding: [padH, padW]);
        // Contiguous like the module's own output: callers read the prediction's storage directly.
        return output.narrow(1, 0, outChannels).contiguous().MoveToOuterDisposeScope();
    }
}
