using AttnDreamBooth.Training;
using TorchSharp;
using TorchSharp.Modules;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The optimizer and the gradient clipping of one stage, configured from <see cref="StageOptions"/> (the optimizer itself is
/// <see cref="AdamWOptimizer"/>, whose state can be checkpointed).
/// </summary>
internal static class StageOptimizer
{
    /// <summary>The optimizer a stage trains <paramref name="trainable"/> with: AdamW with the stage's settings, its moments in
    /// float32 or, with <see cref="TrainingOptions.EightBitOptimizerStates"/>, block-wise 8-bit.</summary>
    public static AdamWOptimizer Create(IEnumerable<(string Name, Parameter Parameter)> trainable, StageOptions settings, TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(trainable);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(options);
        var format = options.EightBitOptimizerStates ? AdamWStateFormat.BlockwiseInt8 : AdamWStateFormat.Float32;
        return new AdamWOptimizer(trainable, settings.Optimizer, settings.LearningRate, format)
        {
            MinQuantizedElements = options.MinQuantizedOptimizerElements,
        };
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
        // Each read of .grad is a new handle on the gradient; one left to the garbage collector keeps the gradient's memory
        // after the optimizer drops it (the trainer calls this outside any scope).
        using var scope = torch.NewDisposeScope();
        var withGrad = parameters.Where(p => p.grad is not null).ToArray();
        if (withGrad.Length == 0) return 0.0;
        if (options.MaxGradNorm is double max)
            return torch.nn.utils.clip_grad_norm_(withGrad, max);
        if (!measure) return double.NaN;
        var total = torch.zeros(1, torch.float64, withGrad[0].device);
        foreach (var p in withGrad) total = total.add(p.grad!.to_type(torch.float64).pow(Kept(2)).sum(), One);
        return Math.Sqrt(total.item<double>());
    }
}
