using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Training;

/// <summary>The four float32 tensors one AdamW update reads and writes (the parameter or its float32 master copy, its
/// gradient in float32, and the two moments).</summary>
internal readonly record struct AdamWTensors(Tensor Param, Tensor Grad, Tensor ExpAvg, Tensor ExpAvgSq);

/// <summary>
/// The one-pass AdamW update for a set of parameters. On the CPU, parameters whose four tensors are float32 and share
/// one dense memory layout go through <see cref="AdamWCpuKernel"/>, their elements cut into chunks that are spread over
/// <c>torch.get_num_threads()</c> workers; everything else (other devices, mismatched or overlapping layouts) takes
/// <see cref="ApplyTensorOps"/>, the fewest whole-tensor operations TorchSharp offers for the same update.
/// </summary>
/// <remarks>
/// Which path a parameter takes depends only on its tensors' device, dtype and strides, which a resumed run reproduces
/// (the optimizer allocates restored moments with the parameter's layout), so a resume follows the same path.
/// </remarks>
internal static class AdamWOnePassUpdate
{
    /// <summary>Elements per unit of parallel work: large enough to amortise scheduling, small enough to balance two to
    /// dozens of workers over parameters of very different sizes.</summary>
    internal const long ChunkElements = 1 << 16;

    /// <summary>Updates every entry of <paramref name="items"/> in place.</summary>
    /// <param name="items">The parameters to update.</param>
    /// <param name="s">The step's constants.</param>
    /// <param name="useCpuKernel">False forces the tensor-op path everywhere (tests of the device path on a CPU build).</param>
    public static void Apply(IReadOnlyList<AdamWTensors> items, in AdamWStepScalars s, bool useCpuKernel = true)
    {
        var kernelWork = new List<KernelItem>(items.Count);
        using (var scope = NewDisposeScope())
        {
            foreach (var item in items)
            {
                if (item.Param.NumberOfElements == 0) continue;
                if (useCpuKernel && TryGetKernelItem(item, out var k)) kernelWork.Add(k);
                else ApplyTensorOps(item, s);
            }
        }
        RunKernel(kernelWork, s);
    }

    /// <summary>
    /// The update in seven in-place tensor operations and one temporary, for devices the C# kernel cannot reach:
    /// decay, <c>lerp_</c> for the first moment, <c>mul_</c> + <c>addcmul_</c> for the second, <c>sqrt</c> and
    /// <c>add_</c> for the denominator and one <c>addcdiv_</c>. The bias correction of the second moment is folded into
    /// ε and the step size (m̂/(√v̂ + ε) = (√(1−β2^t)/(1−β1^t))·m/(√v + ε√(1−β2^t))), as PyTorch's multi-tensor AdamW
    /// does, which saves a pass; float32 arithmetic, so it agrees with the float64 formula to float32 rounding of the
    /// terms involved rather than to the ulp.
    /// </summary>
    public static void ApplyTensorOps(AdamWTensors t, in AdamWStepScalars s)
    {
        using var scope = NewDisposeScope();
        double correction2 = s.BiasCorrection2Sqrt;
        t.Param.mul_(Kept(s.Decay));
        using (var weight = tensor(s.OneMinusBeta1, dtype: t.ExpAvg.dtype, device: t.ExpAvg.device))
            t.ExpAvg.lerp_(t.Grad, weight);
        t.ExpAvgSq.mul_(Kept(s.Beta2)).addcmul_(t.Grad, t.Grad, value: Kept(s.OneMinusBeta2));
        var denom = t.ExpAvgSq.sqrt().add_(Kept(s.Epsilon * correction2), One);
        t.Param.addcdiv_(t.ExpAvg, denom, value: Kept(-s.StepSize * correction2));
    }

    /// <summary>Whether <see cref="Apply"/> would send these tensors through the C# kernel (for tests).</summary>
    internal static bool UsesCpuKernel(AdamWTensors t)
    {
        using var scope = NewDisposeScope();
        return TryGetKernelItem(t, out _);
    }

    private readonly record struct KernelItem(nint Param, nint Grad, nint ExpAvg, nint ExpAvgSq, long Count);

    private static unsafe void RunKernel(List<KernelItem> work, AdamWStepScalars s)
    {
        if (work.Count == 0) return;
        ChunkedParallel.For(work.Select(w => w.Count).ToArray(), ChunkElements, (item, start, count) =>
        {
            var w = work[item];
            AdamWCpuKernel.Update((float*)w.Param + start, (float*)w.Grad + start, (float*)w.ExpAvg + start, (float*)w.ExpAvgSq + start, count, s);
        });
    }

    /// <summary>
    /// The four tensors qualify for the kernel when they are CPU float32 tensors of one shape whose elements are laid out
    /// identically and densely in memory: all contiguous, or all with the same strides that a permutation makes
    /// contiguous (e.g. channels-last convolution weights). Element i of each then sits at the same offset from its data
    /// pointer, which is what the kernel walks.
    /// </summary>
    private static unsafe bool TryGetKernelItem(AdamWTensors t, out KernelItem item)
    {
        item = default;
        Tensor[] all = [t.Param, t.Grad, t.ExpAvg, t.ExpAvgSq];
        foreach (var x in all)
        {
            if (x.device_type != DeviceType.CPU || x.dtype != ScalarType.Float32 || !x.shape.SequenceEqual(t.Param.shape)) return false;
        }
        if (!all.All(x => x.is_contiguous()))
        {
            long[] strides = t.Param.stride();
            if (all.Any(x => !x.stride().SequenceEqual(strides)) || strides.Any(st => st <= 0)) return false;
            long[] order = Enumerable.Range(0, strides.Length).OrderByDescending(d => strides[d]).Select(d => (long)d).ToArray();
            if (!t.Param.permute(order).is_contiguous()) return false;
        }
        item = new KernelItem(DataPointer(t.Param), DataPointer(t.Grad), DataPointer(t.ExpAvg), DataPointer(t.ExpAvgSq), t.Param.NumberOfElements);
        return true;
    }

    /// <summary>The address of a dense tensor's first element (a one-element view, so no size limit applies to the span;
    /// TorchSharp's <c>as_strided</c> defaults the storage offset to 0, so the tensor's own offset is passed).</summary>
    internal static unsafe nint DataPointer(Tensor x)
    {
        var first = x.as_strided([1], [1], x.storage_offset());
        fixed (byte* address = first.bytes) return (nint)address;
    }
}
