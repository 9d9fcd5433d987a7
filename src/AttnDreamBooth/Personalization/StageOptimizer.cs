using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Gradient clipping of one stage, configured from <see cref="StageOptions"/> (the optimizer itself is
/// <see cref="Training.AdamWOptimizer"/>, whose state can be checkpointed).
/// </summary>
internal static class StageOptimizer
{
    /// <summary>
    /// Clips the global L2 norm of the gradients of <paramref name="parameters"/> to <see cref="StageOptions.MaxGradNorm"/>
    /// when it is set (no-op otherwise) and returns the norm before clipping (NaN when clipping is off and
    /// <paramref name="measure"/> is false).
    /// </summary>
    public static double ClipGradients(IEnumerable<Parameter> parameters, StageOptions options, bool measure = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        var withGrad = parameters.Where(p => p.grad is not null).ToArray();
        if (withGrad.Length == 0) return 0.0;
        if (options.MaxGradNorm is double max)
            return torch.nn.utils.clip_grad_norm_(withGrad, max);
        if (!measure) return double.NaN;
        using var scope = torch.NewDisposeScope();
        var total = torch.zeros(1, torch.float64, withGrad[0].device);
        foreach (var p in withGrad) total = total.add(p.grad!.to_type(torch.float64).square().sum());
        return Math.Sqrt(total.item<double>());
    }
}
