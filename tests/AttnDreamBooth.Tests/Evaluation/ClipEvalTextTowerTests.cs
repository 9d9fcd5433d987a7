using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Text;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Evaluation;

/// <summary>The text tower of the CLIP evaluation cases exercises what SD does not: a model folder with the tokenizer
/// files next to a full CLIPModel, a nested text_config, and the padding attention mask. (The "clip" component's
/// parity check belongs to the evaluation code; this only checks the pieces the text side provides.)</summary>
public sealed class ClipEvalTextTowerTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var fixture in FixtureRoots.Cases.Values.Where(c => c.Kind == "clip_eval" && c.HasTensor("clip.text.last_hidden_state")))
            data.Add(fixture.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TokenizerAndMaskedTextModelMatchTheReference(string caseName)
    {
        var fixture = FixtureRoots.Get(caseName);
        string folder = Path.Combine(fixture.Folder, "model");
        using var reference = fixture.OpenReference();
        var prompts = fixture.Manifest.Fact("prompts").EnumerateArray().Select(p => p.GetString()!).ToArray();

        var tokenizer = ClipTokenizer.FromFolder(folder);
        var batch = tokenizer.EncodeBatch(prompts);
        using var ids = batch.InputIdsTensor();
        using var mask = batch.AttentionMaskTensor();
        Assert.True(ids.eq(reference.ReadTensor("clip.text.input_ids")).all().item<bool>());
        Assert.True(mask.eq(reference.ReadTensor("clip.text.attention_mask")).all().item<bool>());

        using var model = new ClipTextModel(ClipTextConfig.Load(Path.Combine(folder, "config.json")));
        using (var source = StateDictSource.OpenComponent(folder))
        {
            StateDictLoader.Load(model, source, new StateDictLoadOptions
            {
                KeyMap = k => k.StartsWith("text_model.", StringComparison.Ordinal) && !ClipTextModel.IsIgnorableKey(k) ? k : null,
            });
        }
        using var noGrad = torch.no_grad();
        using var output = model.Forward(ids, attentionMask: mask);
        foreach (var (name, actual) in new[] { ("clip.text.last_hidden_state", output.LastHiddenState), ("clip.text.pooler_output", output.PoolerOutput) })
        {
            var tolerance = fixture.Manifest.Tensors[name].Tolerance;
            using var expected = reference.ReadTensor(name);
            var error = actual.sub(expected).abs();
            Assert.True(error.le(expected.abs().mul(Kept(tolerance.Rtol)).add(Kept(tolerance.Atol), One)).all().item<bool>(), $"{name}: max abs error {error.max().item<float>()}");
        }
    }
}
