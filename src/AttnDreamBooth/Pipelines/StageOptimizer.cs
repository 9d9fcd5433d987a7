using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Pipelines;

/// <summary>
/// The optimizer and gradient clipping of one stage, configured from <see cref="StageOptions"/>. Always passes the
/// weight decay explicitly: TorchSharp's AdamW defaults to 0, the method uses 1e-2.
/// </summary>
public static class StageOptimizer
{
    /// <summary>An AdamW optimizer over <paramref name="parameters"/> with the stage's learning rate, betas, epsilon
    /// and weight decay (no AMSGrad), matching <c>torch.optim.AdamW</c> as the official script uses it.</summary>
    /// <exception cref="ArgumentException">No parameters, or invalid options.</exception>
    public static torch.optim.Optimizer CreateAdamW(IEnumerable<Parameter> parameters, StageOptions options)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        var list = parameters.ToArray();
        if (list.Length == 0) throw new ArgumentException("The stage has no parameters to optimize.", nameof(parameters));
        var o = options.Optimizer ?? AdamWOptions.Default;
        return torch.optim.AdamW(list, lr: options.LearningRate, beta1: o.Beta1, beta2: o.Beta2, eps: o.Epsilon, weight_decay: o.WeightDecay, amsgrad: false);
    }

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
