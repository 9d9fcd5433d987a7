using AttnDreamBooth.Evaluation;
using AttnDreamBooth.Models.Clip;
using TorchSharp;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/clip-scores": <c>text_projection</c> on the reference text pooler output, the normalisations, cosines,
/// the identity and text scores and <c>logits_per_image</c>, with image embeddings from our vision tower on the stored
/// pixel values.
/// </summary>
public sealed class ClipScoresCheck : IParityCheck
{
    public string Name => "clip-scores";
    public IReadOnlyCollection<string> Components => ["clip"];
    public bool AppliesTo(FixtureCase fixture) => fixture.Kind == "clip_eval" && fixture.HasTensor("clip.scores.identity");

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        fixture.Manifest.WithPrefix("clip.scores.").Select(t => t.Name)
            .Concat(new[] { "clip.logits_per_image", "clip.text.text_embeds" }.Where(fixture.HasTensor));

    public void Run(ParityContext context)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = ClipModel.FromFolder(ClipFixture.ModelFolder(context.Case), textTower: null);
        var imageEmbeds = model.GetImageFeatures(context.Tensor("clip.preprocess.pixel_values"));
        var textEmbeds = model.ProjectText(context.Tensor("clip.text.pooler_output"));
        if (context.Has("clip.text.text_embeds")) context.AssertClose("clip.text.text_embeds", textEmbeds);

        var images = ClipModel.Normalize(imageEmbeds);
        var texts = ClipModel.Normalize(textEmbeds);
        context.AssertClose("clip.scores.image_embeds_normalized", images);
        context.AssertClose("clip.scores.text_embeds_normalized", texts);
        var sourceIndex = context.Tensor("clip.scores.source_index");
        var generatedIndex = context.Tensor("clip.scores.generated_index");
        var promptIndex = context.Tensor("clip.scores.generated_prompt_index");
        var source = images.index_select(0, sourceIndex);
        var generated = images.index_select(0, generatedIndex);
        context.AssertClose("clip.scores.image_image_cosine", ClipScores.ImageImageCosine(source, generated));
        context.AssertClose("clip.scores.text_image_cosine", texts.matmul(images.t()));
        context.AssertClose("clip.scores.text_pairs", ClipScores.TextPairs(texts, generated, promptIndex));
        context.AssertClose("clip.scores.identity", torch.tensor((float)ClipScores.Identity(source, generated)));
        context.AssertClose("clip.scores.text", ClipScores.TextPairs(texts, generated, promptIndex).mean());
        if (context.Has("clip.logits_per_image")) context.AssertClose("clip.logits_per_image", model.LogitsPerImage(imageEmbeds, textEmbeds));

        // The identifier removal of the protocol, on the case's own prompts.
        var facts = ClipFixture.Scores(context.Case);
        string token = facts.GetProperty("concept_token").GetString()!;
        var withToken = ClipFixture.StringArray(facts.GetProperty("prompts_with_token"));
        var removed = ClipFixture.StringArray(facts.GetProperty("prompts_token_removed"));
        Assert.Equal(removed, withToken.Select(p => ClipScores.RemoveIdentifier(p, token)));
    }
}
