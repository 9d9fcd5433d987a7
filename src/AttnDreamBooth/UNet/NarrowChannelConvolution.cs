using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.UNet;

/// <summary>
/// Runs a convolution with few output channels (the U-Net's <c>conv_out</c>: 4) so that its input gradient is right on
/// every CPU. libtorch 2.10's CPU convolution computes the gradient with respect to the input wrongly, non-deterministically
/// and sometimes as NaN/Inf, when the number of output channels is not a multiple of the AVX-512 vector width (measured on
/// an AVX-512 AMD EPYC: 32→4 channels, 3×3; 16 and 32 output channels are exact; the forward pass is exact either way).
/// Padding the weight with zero filters to a multiple of 32 channels and dropping those channels from the output gives
/// the same result and keeps every gradient on the correct kernel path; the padded filters receive no gradient that
/// reaches the real weight.
/// </summary>
internal static class NarrowChannelConvolution
{
    /// <summary>Output channels are padded to a multiple of this (covers 16 float32 and 32 bfloat16 lanes of AVX-512).</summary>
    private const long Multiple = 32;

    /// <summary><paramref name="conv"/>(<paramref name="input"/>) for a stride-1, "same"-padded, dilation-1, groups-1 convolution.</summary>
    public static Tensor Apply(Conv2d conv, Tensor input)
    {
        var weight = conv.weight!;
        long outChannels = weight.shape[0];
        // Only the input gradient is affected: without one the module's own kernel is used unchanged.
        if (outChannels % Multiple == 0 || !is_grad_enabled() || !input.requires_grad) return conv.call(input);
        using var scope = NewDisposeScope();
        long extra = Multiple - outChannels % Multiple;
        var paddedWeight = cat([weight, zeros([extra, weight.shape[1], weight.shape[2], weight.shape[3]], weight.dtype, weight.device)], 0);
        var bias = conv.bias;
        var paddedBias = bias is null ? null : cat([bias, zeros([extra], bias.dtype, bias.device)], 0);
        long padH = (weight.shape[2] - 1) / 2, padW = (weight.shape[3] - 1) / 2;
        var output = nn.functional.conv2d(input, paddedWeight, paddedBias, padding: [padH, padW]);
        return output.narrow(1, 0, outChannels).MoveToOuterDisposeScope();
    }
}
