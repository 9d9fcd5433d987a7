using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Training;

/// <summary>
/// Lays a module's 2-D convolution weights out channels-last (NHWC in memory, NCHW in shape) and back. libtorch's CPU
/// convolution then runs its channels-last kernels in forward and backward, which made the SD 2.1 U-Net's
/// stage-3 step, as the trainer runs it, 0.82× as long at 32×32 latents and no faster at 64×64 (docs/benchmarks.md).
/// </summary>
/// <remarks>Only the memory order changes: every value, shape and parameter object stays as it was (the storage is swapped
/// in place with <c>set_</c>, so optimizers and hooks holding the parameters stay valid), and a gradient already attached is
/// converted with its weight, so accumulation keeps one layout. Writers that read storage make tensors contiguous first.
/// TorchSharp 0.107 has no memory-format argument; the strides say it.</remarks>
internal static class ChannelsLastLayout
{
    /// <summary>Lays every 4-D weight of the <see cref="Conv2d"/> modules in <paramref name="module"/> out channels-last.
    /// Returns how many weights changed layout.</summary>
    public static int Apply(nn.Module module) => Relayout(module, ToChannelsLast);

    /// <summary>Makes every <see cref="Conv2d"/> weight (and gradient) of <paramref name="module"/> contiguous again.
    /// Returns how many changed layout.</summary>
    public static int Undo(nn.Module module) => Relayout(module, t => t.contiguous());

    /// <summary>Whether <paramref name="t"/> is a 4-D tensor laid out channels-last (and not also plainly contiguous).</summary>
    public static bool IsChannelsLast(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return t.dim() == 4 && !t.is_contiguous() && t.permute(0, 2, 3, 1).is_contiguous();
    }

    /// <summary>A copy of the 4-D tensor <paramref name="t"/> laid out channels-last (same shape and values).</summary>
    public static Tensor ToChannelsLast(Tensor t) => t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);

    private static int Relayout(nn.Module module, Func<Tensor, Tensor> layout)
    {
        ArgumentNullException.ThrowIfNull(module);
        int changed = 0;
        using var _ = no_grad();
        foreach (var conv in module.modules().OfType<Conv2d>())
        {
            var weight = conv.weight;
            if (weight is null || weight.dim() != 4 || weight.numel() == 0) continue;
            using var scope = NewDisposeScope();
            var relaid = layout(weight);
            if (relaid.stride().SequenceEqual(weight.stride())) continue;
            weight.set_(relaid);
            if (weight.grad is { } grad) grad.set_(layout(grad));
            changed++;
        }
        return changed;
    }
}
