using AttnDreamBooth.Evaluation;
using TorchSharp;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/clip-text": the text tower of <see cref="ClipTextTower.LoadModel"/> (tokenizer and
/// text transformer from the CLIPModel folder). The case's prompts tokenize to the reference <c>input_ids</c> and
/// <c>attention_mask</c>; the transformer with that mask gives <c>last_hidden_state</c> at every position (padding
/// included) and <c>pooler_output</c>; <c>get_text_features</c> on the raw prompts gives <c>text_embeds</c>; and the full
/// forward (our image embeddings of the stored pixel values with our text embeddings) gives <c>logits_per_image</c>.
/// </summary>
public sealed class ClipTextCheck : IParityCheck
{
    private const string Prefix = "clip.text.";
    private const string Logits = "clip.logits_per_image";
    private static readonly string[] Outputs = ["input_ids", "attention_mask", "last_hidden_state", "pooler_output", "text_embeds"];

    public string Name => "clip-text";
    public IReadOnlyCollection<string> Components => ["clip"];

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "clip_eval" && fixture.HasTensor(Prefix + "input_ids") && fixture.HasTensor(Prefix + "last_hidden_state")
        && fixture.Manifest.DerivedFacts.TryGetProperty("prompts", out _);

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        Outputs.Select(o => Prefix + o)
            .Concat(fixture.HasTensor("clip.preprocess.pixel_values") ? [Logits] : [])
            .Where(fixture.HasTensor);

    public void Run(ParityContext context)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = ClipTextTower.LoadModel(ClipFixture.ModelFolder(context.Case));
        var tower = Assert.IsType<ClipTextTower>(model.TextTower);
        var prompts = ClipFixture.StringArray(context.Manifest.Fact("prompts"));

        var batch = tower.Tokenizer.EncodeBatch(prompts);
        context.AssertClose(Prefix + "input_ids", batch.InputIdsTensor());
        if (context.Has(Prefix + "attention_mask")) context.AssertClose(Prefix + "attention_mask", batch.AttentionMaskTensor());

        // The transformer on the reference inputs, then the whole tower on the raw prompts.
        var ids = context.Tensor(Prefix + "input_ids");
        var mask = context.Has(Prefix + "attention_mask") ? context.Tensor(Prefix + "attention_mask") : null;
        using (var output = tower.Model.Forward(ids, attentionMask: mask))
        {
            context.AssertClose(Prefix + "last_hidden_state", output.LastHiddenState);
            if (context.Has(Prefix + "pooler_output")) context.AssertClose(Prefix + "pooler_output", output.PoolerOutput);
        }
        using (var output = tower.Encode(prompts))
        {
            context.AssertClose(Prefix + "last_hidden_state", output.LastHiddenState);
        }

        var textEmbeds = model.GetTextFeatures(prompts);
        if (context.Has(Prefix + "text_embeds")) context.AssertClose(Prefix + "text_embeds", textEmbeds);
        if (context.Has(Logits) && context.Has("clip.preprocess.pixel_values"))
        {
            var imageEmbeds = model.GetImageFeatures(context.Tensor("clip.preprocess.pixel_values"));
            context.AssertClose(Logits, model.LogitsPerImage(imageEmbeds, textEmbeds));
        }
    }
}
