using AttnDreamBooth.Models.Clip;
using TorchSharp;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>"&lt;case&gt;/clip-vision": the vision tower and <c>visual_projection</c> of <see cref="ClipModel"/> loaded from
/// <c>model/</c>, run on the stored <c>pixel_values</c>. Note: <c>clip.vision.embeddings</c> is transformers'
/// <c>hidden_states[0]</c>, the encoder input, which is AFTER <c>pre_layrnorm</c> (its manifest description says
/// "before"; the values and the call agree with "after").</summary>
public sealed class ClipVisionCheck : IParityCheck
{
    private static readonly string[] Outputs = ["clip.vision.embeddings", "clip.vision.last_hidden_state", "clip.vision.pooler_output", "clip.vision.image_embeds"];

    public string Name => "clip-vision";
    public IReadOnlyCollection<string> Components => ["clip"];
    public bool AppliesTo(FixtureCase fixture) => fixture.Kind == "clip_eval" && fixture.HasTensor("clip.preprocess.pixel_values") && fixture.HasTensor("clip.vision.image_embeds");
    public IEnumerable<string> Claims(FixtureCase fixture) => Outputs.Where(fixture.HasTensor);

    public void Run(ParityContext context)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = ClipModel.FromFolder(ClipFixture.ModelFolder(context.Case), textTower: null);
        var pixels = context.Tensor("clip.preprocess.pixel_values");
        using var output = model.VisionModel.Run(pixels);
        if (context.Has(Outputs[0])) context.AssertClose(Outputs[0], output.EncoderInput);
        if (context.Has(Outputs[1])) context.AssertClose(Outputs[1], output.LastHiddenState);
        if (context.Has(Outputs[2])) context.AssertClose(Outputs[2], output.PoolerOutput);
        context.AssertClose(Outputs[3], model.ProjectImage(output.PoolerOutput));
        context.AssertClose(Outputs[3], model.GetImageFeatures(pixels));
    }
}
