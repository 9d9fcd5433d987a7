using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Pipelines.Training;

/// <summary>Global L2-norm gradient clipping over a set of parameters.</summary>
public static class GradientClipping
{
    /// <summary>Scales the gradients of <paramref name="parameters"/> so their joint L2 norm is at most
    /// <paramref name="maxNorm"/>; returns the norm before clipping (NaN/Inf when a gradient is not finite).</summary>
    public static double ClipByGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "must be positive");
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Cast<torch.Tensor>().ToList();
        if (grads.Count == 0) return 0;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var total = torch.stack(grads.Select(g => g.to_type(torch.float32).norm()).ToArray()).norm().item<float>();
        double coefficient = maxNorm / (total + 1e-6);
        if (coefficient < 1 && double.IsFinite(total))
        {
            foreach (var g in grads) g.mul_(coefficient);
        }
        return total;
    }
}
