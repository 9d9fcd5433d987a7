using TorchSharp;

namespace AttnDreamBooth.Tests.Models.Vae;

/// <summary>Captures a module's output during a forward pass (the reference's debugging hooks).</summary>
internal static class VaeHooks
{
    public static IDisposable Capture(torch.nn.Module module, Action<torch.Tensor> onOutput)
    {
        if (module is not torch.nn.Module<torch.Tensor, torch.Tensor> typed)
            throw new ArgumentException($"{module.GetType().Name} is not a tensor-to-tensor module.", nameof(module));
        var handle = typed.register_forward_hook((_, _, output) =>
        {
            // Detached from the module's dispose scope, which ends before the caller compares; the caller disposes it.
            onOutput(output.detach().clone().DetachFromDisposeScope());
            return output;
        });
        return new Remover(handle.remove);
    }

    private sealed class Remover(Action remove) : IDisposable
    {
        public void Dispose() => remove();
    }
}
