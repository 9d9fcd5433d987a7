using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Training;

using Attention = AttnDreamBooth.Models.Attention.Attention;

/// <summary>
/// Lean frozen weights: holds the frozen layers of a module in bfloat16 or float16 while the trainable parameters
/// (and therefore their gradients and optimizer state) stay float32. TorchSharp has no autocast; instead the modules
/// of this library compute in their weights' dtype and return their caller's dtype (the U-Net's <c>forward</c>, the
/// VAE's <c>Encode</c>/<c>Decode</c>), and <see cref="Attention"/> casts at each projection, so a float32 projection
/// inside a half-precision transformer block works in both directions (stage 2: train <c>attn2.to_q/to_k/to_v/to_out.0</c>).
/// </summary>
/// <remarks>
/// Casting is lossy: to train a layer later in float32 (e.g. the whole U-Net in stage 3), reload its weights rather
/// than casting the half-precision copy back. Apply before creating the optimizer: casting replaces the parameter
/// objects of the cast layers (frozen ones, which no optimizer should hold).
/// </remarks>
internal static class FrozenPrecision
{
    /// <summary>
    /// Casts the frozen parts of <paramref name="module"/> to <paramref name="dtype"/>: every sub-module none of whose
    /// parameters is kept is converted whole (floating parameters and buffers; integer buffers keep their type). A
    /// parameter is kept in its current dtype when it requires a gradient or <paramref name="keepFp32"/> accepts its full
    /// name (e.g. <c>down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.weight</c>); set <c>requires_grad</c>
    /// for the stage first.
    /// </summary>
    /// <param name="module">The model (U-Net, VAE, text encoder …).</param>
    /// <param name="dtype"><see cref="ScalarType.BFloat16"/> (recommended; float32's range) or <see cref="ScalarType.Float16"/>.</param>
    /// <param name="keepFp32">Parameters to keep although frozen (optional).</param>
    /// <returns>The parameter names cast and kept.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not a half-precision type.</exception>
    /// <exception cref="NotSupportedException">A layer would stay float32 where this library does not cast at its
    /// boundary (only the projections of <see cref="Attention"/> layers may differ from the rest of a model).</exception>
    public static FrozenPrecisionResult Apply(nn.Module module, ScalarType dtype, Func<string, bool>? keepFp32 = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (dtype is not (ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"Frozen weights can be held in BFloat16 or Float16, not {dtype}.", nameof(dtype));

        bool Keep(string name, Tensor parameter) => parameter.requires_grad || (keepFp32?.Invoke(name) ?? false);
        var floating = module.named_parameters().Where(p => p.parameter.is_floating_point()).ToArray();
        var kept = floating.Where(p => Keep(p.name, p.parameter)).Select(p => p.name).ToArray();
        var keptSet = new HashSet<string>(kept, StringComparer.Ordinal);

        // Cast whole subtrees that hold no kept parameter (Module.to converts floating parameters and buffers only).
        var castRoots = new List<nn.Module>();
        var cast = new List<string>();
        var stranded = new List<string>();
        void Visit(nn.Module m, string prefix)
        {
            var names = m.named_parameters().Where(p => p.parameter.is_floating_point()).Select(p => prefix + p.name).ToArray();
            if (names.Length == 0) return;
            if (!names.Any(keptSet.Contains))
            {
                castRoots.Add(m);
                cast.AddRange(names);
                return;
            }
            // Mixed: its own parameters cannot be cast without its children's.
            stranded.AddRange(m.named_parameters(recurse: false).Where(p => p.parameter.is_floating_point())
                .Select(p => prefix + p.name).Where(n => !keptSet.Contains(n)));
            foreach (var (name, child) in m.named_children()) Visit(child, prefix + name + ".");
        }
        Visit(module, "");

        if (cast.Count > 0)
        {
            var projections = ProjectionPaths(module);
            var unsupported = kept.Where(n => !projections.Contains(Owner(n))).Concat(stranded).ToArray();
            if (unsupported.Length > 0)
                throw new NotSupportedException(
                    $"These parameters would stay float32 inside a {dtype} model, where nothing casts at their layer's boundary: "
                    + $"{string.Join(", ", unsupported.Take(8))}{(unsupported.Length > 8 ? $" (+{unsupported.Length - 8} more)" : "")}. "
                    + "Only attention projections (to_q, to_k, to_v, to_out.0) may be trained inside a half-precision model; "
                    + "train the whole model in float32 instead (do not apply frozen precision to it).");
        }

        foreach (var root in castRoots) ConvertReleasing(root, dtype);
        return new FrozenPrecisionResult(dtype, cast, kept);
    }

    /// <summary>
    /// <c>module.to(dtype)</c>, then disposes the floating parameters and buffers it replaced. TorchSharp's conversion
    /// registers new tensors and leaves the old ones to the garbage collector, which does not see native memory: a
    /// real-size U-Net cast to bf16 kept its float32 weights (3 GiB) alive next to the bf16 copy. Callers must not hold
    /// the old tensors (select parameters after converting).
    /// </summary>
    internal static void ConvertReleasing(nn.Module module, ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(module);
        var before = module.parameters().Cast<Tensor>().Concat(module.buffers()).Where(t => t.is_floating_point() && t.dtype != dtype).ToArray();
        module.to(dtype);
        var now = new HashSet<Tensor>(module.parameters().Cast<Tensor>().Concat(module.buffers()), ReferenceEqualityComparer.Instance);
        foreach (var old in before)
        {
            if (!now.Contains(old) && !old.IsInvalid) old.Dispose();
        }
    }

    private static string Owner(string parameterName)
    {
        int dot = parameterName.LastIndexOf('.');
        return dot < 0 ? "" : parameterName[..dot];
    }

    /// <summary>The dtype <paramref name="module"/> computes in: that of its first floating-point parameter (float32 when it
    /// has none). Use it to cast inputs a module does not cast itself (e.g. spliced embeddings fed to a text encoder).</summary>
    public static ScalarType ComputeDType(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.parameters().FirstOrDefault(p => p.is_floating_point())?.dtype ?? ScalarType.Float32;
    }

    /// <summary>Total bytes of the parameters of <paramref name="module"/>, by dtype.</summary>
    public static IReadOnlyDictionary<ScalarType, long> ParameterBytes(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return module.parameters().GroupBy(p => p.dtype).ToDictionary(g => g.Key, g => g.Sum(p => p.numel() * p.ElementSize));
    }

    private static HashSet<string> ProjectionPaths(nn.Module module)
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (path, child) in module.named_modules())
        {
            if (child is not Attention) continue;
            string prefix = path.Length == 0 ? "" : path + ".";
            foreach (var name in new[] { "to_q", "to_k", "to_v", "to_out.0" }) paths.Add(prefix + name);
        }
        return paths;
    }
}

/// <summary>What <see cref="FrozenPrecision.Apply"/> did.</summary>
/// <param name="DType">The half-precision dtype of the cast layers.</param>
/// <param name="Cast">Full names of the parameters now held in <paramref name="DType"/>.</param>
/// <param name="Kept">Full names of the parameters left in their dtype (trainable, or kept on request).</param>
internal sealed record FrozenPrecisionResult(ScalarType DType, IReadOnlyList<string> Cast, IReadOnlyList<string> Kept);
