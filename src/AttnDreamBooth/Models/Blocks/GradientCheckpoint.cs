using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.Blocks;

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
internal static class GradientCheckpoint
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
        ReleaseReturnedGradients();
        var trainable = parameters.Where(p => p.requires_grad).ToArray();
        bool needsGraph = is_grad_enabled() && (trainable.Length > 0 || inputs.Any(i => i is not null && i.requires_grad));
        if (!needsGraph) return function(inputs);

        var firstPass = new FirstPassOutputs();
        var args = new object[Leading + inputs.Length + trainable.Length];
        args[0] = function;
        args[1] = inputs.Length;
        args[2] = firstPass;
        for (int i = 0; i < inputs.Length; i++) args[Leading + i] = inputs[i]!;
        for (int i = 0; i < trainable.Length; i++) args[Leading + inputs.Length + i] = trainable[i];
        var wrapped = CheckpointFunction.apply(args).ToArray();
        // apply() hands out new handles on the same tensors; the function's own handles are ours to release now
        // (some may have been detached from every dispose scope, e.g. recorded attention maps).
        foreach (var raw in firstPass.Tensors)
        {
            if (!wrapped.Any(w => ReferenceEquals(w, raw))) raw.Dispose();
        }
        return wrapped;
    }

    /// <summary>Non-tensor arguments before the inputs: the function, the input count, the first-pass holder.</summary>
    private const int Leading = 3;

    private sealed class FirstPassOutputs
    {
        public Tensor[] Tensors { get; set; } = [];
    }

    /// <summary>True on the thread while a checkpointed function is being recomputed for backward.</summary>
    public static bool IsRecomputing => CheckpointFunction.Recomputing > 0;

    [ThreadStatic]
    private static List<Tensor>? _returnedGradients;

    private static List<Tensor> ReturnedGradients => _returnedGradients ??= [];

    /// <summary>Disposes the gradient handles handed to libtorch by the previous backward call on this thread.</summary>
    private static void ReleaseReturnedGradients()
    {
        if (_returnedGradients is not { Count: > 0 } pending) return;
        foreach (var g in pending) g.Dispose();
        pending.Clear();
    }

    private sealed class CheckpointFunction : autograd.MultiTensorFunction<CheckpointFunction>
    {
        [ThreadStatic]
        internal static int Recomputing;

        public override string Name => "AttnDreamBoothCheckpoint";

        public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var function = (Func<Tensor?[], Tensor[]>)vars[0];
            int count = (int)vars[1];
            var firstPass = (FirstPassOutputs)vars[2];
            var inputs = new Tensor?[count];
            for (int i = 0; i < count; i++) inputs[i] = vars[Leading + i] as Tensor;
            // TorchSharp would build zero gradients for unused outputs from a cached empty_like of each output, and that
            // cache lives in the caller's dispose scope, which may be gone by backward; unused outputs arrive undefined instead.
            ctx.set_materialize_grads(false);
            ctx.save_data("function", function);
            ctx.save_data("count", count);
            ctx.save_data("present", inputs.Select(i => i is not null).ToArray());
            ctx.save_data("requires", inputs.Select(i => i is not null && i.requires_grad).ToArray());
            ctx.save_data("parameters", vars.Skip(Leading + count).Cast<Tensor>().ToArray());
            ctx.save_for_backward(inputs.Where(i => i is not null).Select(i => i!.detach()).ToList());
            Tensor[] outputs;
            using (no_grad())
            {
                outputs = function(inputs);
            }
            ctx.save_data("outputs", outputs.Length);
            firstPass.Tensors = outputs;
            return outputs.ToList();
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> gradOutputs)
        {
            var function = (Func<Tensor?[], Tensor[]>)ctx.get_data("function");
            int count = (int)ctx.get_data("count");
            var present = (bool[])ctx.get_data("present");
            var requires = (bool[])ctx.get_data("requires");
            var parameters = (Tensor[])ctx.get_data("parameters");
            int outputCount = (int)ctx.get_data("outputs");
            // Everything recomputed here is released before returning; only the gradients leave.
            using var scope = NewDisposeScope();
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
            if (outputs.Length != outputCount)
            {
                foreach (var o in outputs) o.Dispose();
                throw new InvalidOperationException(
                    $"A checkpointed function returned {outputs.Length} tensors when recomputed for backward but {outputCount} in the forward pass; "
                    + "it must not depend on state that changes between forward and backward (e.g. attention recording switched on or off).");
            }

            var targets = new List<Tensor>();
            for (int i = 0; i < count; i++)
            {
                if (requires[i]) targets.Add(inputs[i]!);
            }
            int inputTargets = targets.Count;
            targets.AddRange(parameters);

            var differentiable = new List<Tensor>();
            var gradients = new List<Tensor>();
            for (int i = 0; i < outputs.Length; i++)
            {
                if (!outputs[i].requires_grad || i >= gradOutputs.Count || gradOutputs[i] is null || gradOutputs[i].IsInvalid) continue;
                differentiable.Add(outputs[i]);
                gradients.Add(gradOutputs[i]);
            }

            // A nested backward accumulates each parameter's gradient straight into its .grad as the engine reaches it
            // (as PyTorch's reentrant checkpoint does), instead of materialising the whole block's parameter gradients at
            // once and handing them back; only the inputs' gradients are returned through the autograd edge.
            if (differentiable.Count > 0 && targets.Count > 0)
                autograd.backward(differentiable, gradients, retain_graph: false, create_graph: false, inputs: targets);
            var computed = new Tensor?[inputTargets];
            for (int t = 0; t < inputTargets; t++) computed[t] = targets[t].grad;

            foreach (var o in outputs) o.Dispose();
            // The input gradients must outlive this call (libtorch copies them when it returns), but not the whole
            // backward: they are released at the next backward call or checkpoint.
            ReleaseReturnedGradients();
            foreach (var g in computed.Where(g => g is not null && !g.IsInvalid))
            {
                g!.DetachFromDisposeScope();
                ReturnedGradients.Add(g);
            }

            var result = new List<Tensor> { null!, null!, null! };
            for (int i = 0, t = 0; i < count; i++)
            {
                result.Add(requires[i] ? computed[t++]! : null!);
            }
            // Parameters already received their gradients in .grad above.
            for (int p = 0; p < parameters.Length; p++) result.Add(null!);
            return result;
        }
    }
}
