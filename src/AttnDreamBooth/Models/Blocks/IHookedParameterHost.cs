using TorchSharp.Modules;

namespace AttnDreamBooth.Models.Blocks;

/// <summary>
/// A model whose forward pass also runs parameters that are not its own: forward hooks on its layers (LoRA adapters)
/// add computations the model's <c>parameters()</c> do not list. Gradient checkpointing recomputes a block in backward
/// and hands libtorch the parameters to differentiate explicitly, so it must be told about these too.
/// </summary>
internal interface IHookedParameterHost
{
    /// <summary>Records that the layer at <paramref name="modulePath"/> runs <paramref name="parameters"/> through a hook.</summary>
    void AttachHookedParameters(string modulePath, IReadOnlyList<Parameter> parameters);

    /// <summary>Forgets the hooked parameters of the layer at <paramref name="modulePath"/>.</summary>
    void DetachHookedParameters(string modulePath);
}
