using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Models.Clip;

/// <summary>The outputs of the CLIP vision tower.</summary>
/// <param name="Embeddings">Patch + class + position embeddings, before <c>pre_layrnorm</c> [B, T, C].</param>
/// <param name="EncoderInput">The embeddings after <c>pre_layrnorm</c>: the encoder's input and transformers'
/// <c>hidden_states[0]</c> [B, T, C].</param>
/// <param name="LastHiddenState">The encoder output [B, T, C].</param>
/// <param name="PoolerOutput"><c>post_layernorm</c> of the class token [B, C].</param>
internal sealed record ClipVisionOutput(torch.Tensor Embeddings, torch.Tensor EncoderInput, torch.Tensor LastHiddenState, torch.Tensor PoolerOutput) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        Embeddings.Dispose();
        EncoderInput.Dispose();
        LastHiddenState.Dispose();
        PoolerOutput.Dispose();
    }
}

/// <summary>transformers <c>CLIPVisionTransformer</c> (the <c>vision_model</c> of <c>CLIPModel</c>): embeddings →
/// <c>pre_layrnorm</c> (sic) → encoder; pooled = <c>post_layernorm</c>(class token).</summary>
internal sealed class ClipVisionTransformer : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006
    private readonly ClipVisionEmbeddings embeddings;
    private readonly LayerNorm pre_layrnorm;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm post_layernorm;
#pragma warning restore IDE1006

    /// <summary>Creates the tower with parameters on <paramref name="device"/> (the meta device allocates nothing).</summary>
    public ClipVisionTransformer(ClipVisionConfig config, torch.Device? device = null) : base("vision_model")
    {
        Config = config;
        embeddings = new ClipVisionEmbeddings(config, device);
        pre_layrnorm = torch.nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device);
        encoder = new ClipEncoder(ClipEncoderSpec.Vision(config), device);
        post_layernorm = torch.nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device);
        RegisterComponents();
    }

    /// <summary>The configuration.</summary>
    public ClipVisionConfig Config { get; }

    /// <summary>The pooled output [B, C] of <c>pixel_values</c> [B, 3, H, W].</summary>
    public override torch.Tensor forward(torch.Tensor pixelValues)
    {
        var output = Run(pixelValues);
        output.Embeddings.Dispose();
        output.EncoderInput.Dispose();
        output.LastHiddenState.Dispose();
        return output.PoolerOutput;
    }

    /// <summary>All outputs of <c>pixel_values</c> [B, 3, H, W].</summary>
    /// <exception cref="ArgumentException">The input size does not match the config.</exception>
    public ClipVisionOutput Run(torch.Tensor pixelValues)
    {
        ArgumentNullException.ThrowIfNull(pixelValues);
        if (pixelValues.ndim != 4 || pixelValues.shape[1] != Config.NumChannels || pixelValues.shape[2] != Config.ImageSize || pixelValues.shape[3] != Config.ImageSize)
            throw new ArgumentException($"pixel_values must be [B, {Config.NumChannels}, {Config.ImageSize}, {Config.ImageSize}], got [{string.Join(", ", pixelValues.shape)}].", nameof(pixelValues));
        using var scope = torch.NewDisposeScope();
        var embedded = embeddings.call(pixelValues);
        var encoderInput = pre_layrnorm.call(embedded);
        var hidden = encoder.Forward(encoderInput, additiveMask: null, hiddenStates: null);
        var pooled = post_layernorm.call(hidden.select(1, 0));
        return new ClipVisionOutput(embedded.MoveToOuterDisposeScope(), encoderInput.MoveToOuterDisposeScope(), hidden.MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope());
    }
}
