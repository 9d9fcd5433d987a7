using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Training;

/// <summary>
/// Activation (gradient) checkpointing: runs a function without keeping its intermediate activations and
/// recomputes them during the backward pass. TorchSharp has no <c>torch.utils.checkpoint</c>; this is a
/// reentrant implementation on a custom autograd function.
/// </summary>
/// <remarks>
/// The function must be deterministic (it runs twice): Stable Diffusion blocks have no dropout at training
/// time here. Parameters that require gradients are passed explicitly so the autograd edge exists even when no
/// input requires a gradient (e.g. stage 2, where only attention projections train and the block's input comes
/// from frozen layers).
/// </remarks>
public static class GradientCheckpoint
{
    /// <summary>Computes <paramref name="function"/>(<paramref name="inputs"/>) and, when gradients are enabled
    /// and anything requires one, frees its activations until backward.</summary>
    /// <param name="function">Maps the inputs to one or more outputs. Called under no_grad first, then again with
    /// gradients during backward.</param>
    /// <param name="inputs">Tensor inputs (null entries allowed).</param>
    /// <param name="parameters">The parameters the function uses; those requiring gradients receive them.</param>
    public static Tensor[] Run(Func<Tensor?[], Tensor[]> function, Tensor?[] inputs, IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(inputs);
        var trainable = parameters.Where(p => p.requires_grad).ToArray();
        bool needsGraph = is_grad_enabled() && (trainable.Length > 0 || inputs.Any(i => i is not null && i.requires_grad));
        if (!needsGraph) return function(inputs);

        var args = new object[2 + inputs.Length + trainable.Length];
        args[0] = function;
        args[1] = inputs.Length;
        for (int i = 0; i < inputs.Length; i++) args[2 + i] = inputs[i]!;
        for (int i = 0; i < trainable.Length; i++) args[2 + inputs.Length + i] = trainable[i];
        return CheckpointFunction.apply(args).ToArray();
    }

    /// <summary>True on the thread while a checkpointed function is being recomputed for backward.</summary>
    public static bool IsRecomputing => CheckpointFunction.Recomputing > 0;

    private sealed class CheckpointFunction : autograd.MultiTensorFunction<CheckpointFunction>
    {
        [ThreadStatic]
        internal static int Recomputing;

        public override string Name => "AttnDreamBoothCheckpoint";

        public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var function = (Func<Tensor?[], Tensor[]>)vars[0];
            int count = (int)vars[1];
            var inputs = new Tensor?[count];
            for (int i = 0; i < count; i++) inputs[i] = vars[2 + i] as Tensor;
            ctx.save_data("function", function);
            ctx.save_data("count", count);
            ctx.save_data("present", inputs.Select(i => i is not null).ToArray());
            ctx.save_data("requires", inputs.Select(i => i is not null && i.requires_grad).ToArray());
            ctx.save_data("parameters", vars.Skip(2 + count).Cast<Tensor>().ToArray());
            ctx.save_for_backward(inputs.Where(i => i is not null).Select(i => i!.detach()).ToList());
            using (no_grad())
            {
                return function(inputs).ToList();
            }
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> gradOutputs)
        {
            var function = (Func<Tensor?[], Tensor[]>)ctx.get_data("function");
            int count = (int)ctx.get_data("count");
            var present = (bool[])ctx.get_data("present");
            var requires = (bool[])ctx.get_data("requires");
            var parameters = (Tensor[])ctx.get_data("parameters");
            var saved = ctx.get_saved_variables();

            var inputs = new Tensor?[count];
            for (int i = 0, s = 0; i < count; i++)
            {
                if (!present[i]) continue;
                inputs[i] = saved[s++].detach().requires_grad_(requires[i]);
            }

            Tensor[] outputs;
            Recomputing++;
            try
            {
                using (enable_grad())
                {
                    outputs = function(inputs);
                }
            }
            finally
            {
                Recomputing--;
            }

            var targets = new List<Tensor>();
            for (int i = 0; i < count; i++)
            {
                if (requires[i]) targets.Add(inputs[i]!);
            }
            targets.AddRange(parameters);

            var differentiable = new List<Tensor>();
            var gradients = new List<Tensor>();
            for (int i = 0; i < outputs.Length; i++)
            {
                if (!outputs[i].requires_grad || i >= gradOutputs.Count || gradOutputs[i] is null) continue;
                differentiable.Add(outputs[i]);
                gradients.Add(gradOutputs[i]);
            }

            IList<Tensor> computed = differentiable.Count == 0 || targets.Count == 0
                ? targets.Select(_ => (Tensor)null!).ToList()
                : autograd.grad(differentiable, targets, gradients, retain_graph: false, create_graph: false, allow_unused: true);

            var result = new List<Tensor> { null!, null! };
            for (int i = 0, t = 0; i < count; i++)
            {
                result.Add(requires[i] ? computed[t++] : null!);
            }
            int offset = targets.Count - parameters.Length;
            for (int p = 0; p < parameters.Length; p++) result.Add(computed[offset + p]);
            return result;
        }
    }
}
