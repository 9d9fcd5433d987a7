using TorchSharp;
using TorchSharp.Modules;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Clip;

/// <summary>transformers <c>CLIPVisionEmbeddings</c>: patch convolution, a prepended class token and learned positions.</summary>
internal sealed class ClipVisionEmbeddings : torch.nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006 // Names mirror the transformers state-dict keys.
    private readonly Parameter class_embedding;
    private readonly Conv2d patch_embedding;
    private readonly Embedding position_embedding;
#pragma warning restore IDE1006

    /// <summary>Creates the embeddings with parameters on <paramref name="device"/>.</summary>
    public ClipVisionEmbeddings(ClipVisionConfig config, torch.Device? device = null) : base("embeddings")
    {
        class_embedding = new Parameter(torch.randn(config.HiddenSize, device: device));
        patch_embedding = torch.nn.Conv2d(config.NumChannels, config.HiddenSize, config.PatchSize, stride: config.PatchSize, bias: false, device: device);
        position_embedding = torch.nn.Embedding(config.NumPositions, config.HiddenSize, device: device);
        RegisterComponents();
    }

    /// <summary>Maps <c>pixel_values</c> [B, C, H, W] to token embeddings [B, 1 + patches, hidden].</summary>
    public override torch.Tensor forward(torch.Tensor pixelValues)
    {
        using var scope = torch.NewDisposeScope();
        var patches = AttnDreamBooth.Models.Blocks.NarrowChannelConvolution.Apply(patch_embedding, pixelValues.to_type(patch_embedding.weight!.dtype), stride: patch_embedding.weight!.shape[2], padding: 0);
        patches = patches.flatten(2).transpose(1, 2);
        long batch = patches.shape[0];
        var cls = class_embedding.expand(batch, 1, -1);
        var tokens = torch.cat([cls, patches], 1);
        var positions = torch.arange(Kept(0), Kept(tokens.shape[1]), Kept(1), dtype: torch.int64, device: tokens.device);
        return (tokens.add(position_embedding.call(positions).unsqueeze(0), One)).MoveToOuterDisposeScope();
    }
}
