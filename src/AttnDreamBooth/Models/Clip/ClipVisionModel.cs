using TorchSharp;

namespace AttnDreamBooth.Models.Clip;

/// <summary>transformers <c>CLIPVisionModel</c>: the vision tower alone, under <c>vision_model.*</c> (loads the vision
/// weights of a <c>CLIPVisionModel</c> or, with the other keys dropped, of a <c>CLIPModel</c> checkpoint).</summary>
internal sealed class ClipVisionModel : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006
    private readonly ClipVisionTransformer vision_model;
#pragma warning restore IDE1006

    /// <summary>Creates the model with parameters on <paramref name="device"/>.</summary>
    /// <exception cref="IO.TensorAllocationException">The parameters do not fit in memory.</exception>
    public ClipVisionModel(ClipVisionConfig config, torch.Device? device = null) : base("clip_vision_model")
    {
        vision_model = IO.TensorAllocation.GuardModel("CLIP vision model", ClipVisionLimits.Estimate(config), () => new ClipVisionTransformer(config, device));
        RegisterComponents();
    }

    /// <summary>The tower.</summary>
    public ClipVisionTransformer VisionModel => vision_model;

    /// <summary>The pooled output [B, C].</summary>
    public override torch.Tensor forward(torch.Tensor pixelValues) => vision_model.call(pixelValues);

    /// <summary>All outputs.</summary>
    public ClipVisionOutput Run(torch.Tensor pixelValues) => vision_model.Run(pixelValues);
}
