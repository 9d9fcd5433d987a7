using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>
/// Runs a spatial convolution whose channel counts libtorch's CPU kernel gets wrong so that it is right on every CPU;
/// the models call every spatial convolution through it (the U-Net's and VAE's <c>conv_out</c> with 4, 8 or 3 output
/// channels, a CLIP patch embedding of width 24, every convolution of a model with 8-channel blocks such as the Shapes
/// world's tiny one, and an up-block resnet that takes 16 + 8 = 24 concatenated channels).
/// libtorch 2.10's float32 CPU convolution (kernel larger than 1×1) is wrong on AVX-512 CPUs, measured on an AMD EPYC
/// with avx512_bf16: it reads channel lanes it never wrote, so results depend on what the allocator left there —
/// wrong values, and NaN when that memory held NaN (freed backward buffers often do). Two cases, measured over 1–72
/// channels: the forward pass with more than 16 input channels that are not a multiple of 16 (17, 20, 24, 40, 72: NaN
/// or a relative error of 0.15–0.35; 1–15 and multiples of 16 are exact), and the gradient with respect to the input
/// when the output channels are not a multiple of 16. The bfloat16 forward pass with such output channels is also off
/// (relative error 0.2–0.35). Padding the weight (and the input, for input channels) with zero channels to a multiple
/// of 32 gives the same result on a correct kernel path; the padding receives no gradient that reaches a real tensor.
/// </summary>
internal static class NarrowChannelConvolution
{
    /// <summary>Channels are padded to a multiple of this (covers 16 float32 and 32 bfloat16 lanes of AVX-512).</summary>
    private const long Multiple = 32;

    /// <summary>Whether <see cref="Apply"/> may compute <paramref name="conv"/> itself instead of calling the module (its
    /// forward hooks then do not run): a spatial kernel with an output-channel count that is not a multiple of 16, or
    /// more than 16 input channels that are not a multiple of 16.</summary>
    public static bool Reroutes(Conv2d conv)
    {
        ArgumentNullException.ThrowIfNull(conv);
        var shape = conv.weight!.shape;
        return Spatial(shape) && (NarrowOutput(shape[0]) || NarrowInput(shape[1]));
    }

    /// <summary>Why <see cref="Reroutes"/> holds for <paramref name="conv"/>, for error messages.</summary>
    public static string Reason(Conv2d conv)
    {
        var shape = conv.weight!.shape;
        return NarrowOutput(shape[0])
            ? $"its {shape[0]} output channels (not a multiple of 16)"
            : $"its {shape[1]} input channels (more than 16, not a multiple of 16)";
    }

    private static bool Spatial(long[] weightShape) => weightShape[2] > 1 || weightShape[3] > 1;

    private static bool NarrowOutput(long channels) => channels % 16 != 0;

    private static bool NarrowInput(long channels) => channels > 16 && channels % 16 != 0;

    /// <summary><paramref name="conv"/>(<paramref name="input"/>) for a dilation-1, groups-1 convolution with the given
    /// stride and symmetric padding (the module's own construction arguments).</summary>
    public static Tensor Apply(Conv2d conv, Tensor input, long stride = 1, long? padding = null)
    {
        Tensor weight = conv.weight!;
        bool spatial = Spatial(weight.shape);
        long outChannels = weight.shape[0], inChannels = weight.shape[1];
        bool padOutput = spatial && NarrowOutput(outChannels)
            && (weight.dtype == ScalarType.BFloat16 || (is_grad_enabled() && input.requires_grad));
        bool padInput = spatial && NarrowInput(inChannels);
        if (!padOutput && !padInput) return conv.call(input);
        using var scope = NewDisposeScope();
        Tensor? bias = conv.bias;
        if (padInput)
        {
            long extra = Multiple - inChannels % Multiple;
            weight = cat([weight, zeros([outChannels, extra, weight.shape[2], weight.shape[3]], weight.dtype, weight.device)], 1);
            input = cat([input, zeros([input.shape[0], extra, input.shape[2], input.shape[3]], input.dtype, input.device)], 1);
        }
        if (padOutput)
        {
            long extra = Multiple - outChannels % Multiple;
            weight = cat([weight, zeros([extra, weight.shape[1], weight.shape[2], weight.shape[3]], weight.dtype, weight.device)], 0);
            bias = bias is null ? null : cat([bias, zeros([extra], bias.dtype, bias.device)], 0);
        }
        long padH = padding ?? (weight.shape[2] - 1) / 2, padW = padding ?? (weight.shape[3] - 1) / 2;
        var output = nn.functional.conv2d(input, weight, bias, strides: [stride, stride], padding: [padH, padW]);
        // Contiguous like the module's own output: callers read the prediction's storage directly.
        return (padOutput ? output.narrow(1, 0, outChannels).contiguous() : output).MoveToOuterDisposeScope();
    }
}
