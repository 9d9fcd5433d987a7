namespace AttnDreamBooth.Models.Lora;

/// <summary>What kind of layer a LoRA adapter wraps.</summary>
internal enum LoraLayerKind
{
    /// <summary>A linear layer: down <c>[r, in]</c>, up <c>[out, r]</c>.</summary>
    Linear,

    /// <summary>A 1×1 convolution: down <c>[r, in, 1, 1]</c>, up <c>[out, r, 1, 1]</c>.</summary>
    Conv1x1,

    /// <summary>A k×k convolution with k &gt; 1 ("LoCon"): down <c>[r, in, k, k]</c> with the base conv's stride,
    /// padding and dilation, up <c>[out, r, 1, 1]</c>.</summary>
    ConvKxK,
}
