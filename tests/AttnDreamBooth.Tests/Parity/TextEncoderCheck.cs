using AttnDreamBooth.Models.Clip;
using TorchSharp;
using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>"&lt;case&gt;/text-encoder": the text encoder loaded from the pipeline folder reproduces last_hidden_state,
/// pooler_output and every hidden state from the reference input ids.</summary>
public sealed class TextEncoderCheck : IParityCheck
{
    private const string Prefix = "text_encoder.";
    private const string HiddenStatesPrefix = "text_encoder.hidden_states.";

    public string Name => "text-encoder";

    public IReadOnlyCollection<string> Components => ["text_encoder"];

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "sd_pipeline" && fixture.HasTensor(Prefix + "input_ids") && fixture.HasTensor(Prefix + "last_hidden_state");

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        new[] { Prefix + "input_ids", Prefix + "last_hidden_state", Prefix + "pooler_output" }
            .Concat(fixture.Manifest.WithPrefix(HiddenStatesPrefix).Select(t => t.Name))
            .Where(fixture.HasTensor);

    public void Run(ParityContext context)
    {
        using var model = ClipTextModel.FromFolder(Path.Combine(context.Case.PipelineFolder, "text_encoder"));
        using var noGrad = torch.no_grad();
        using var ids = context.Tensor(Prefix + "input_ids");
        using var output = model.Forward(ids, outputHiddenStates: true);

        context.AssertClose(Prefix + "last_hidden_state", output.LastHiddenState);
        if (context.Has(Prefix + "pooler_output")) context.AssertClose(Prefix + "pooler_output", output.PoolerOutput);

        var stored = context.Manifest.WithPrefix(HiddenStatesPrefix).Select(t => t.Name).ToArray();
        if (stored.Length > 0 && stored.Length != output.HiddenStates!.Count)
            throw new XunitException($"{context.Case.Name}: the reference has {stored.Length} hidden states, the model returned {output.HiddenStates.Count}");
        foreach (string name in stored)
        {
            int index = int.Parse(name[HiddenStatesPrefix.Length..], System.Globalization.CultureInfo.InvariantCulture);
            context.AssertClose(name, output.HiddenStates![index]);
        }
    }
}
