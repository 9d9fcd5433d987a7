using AttnDreamBooth.IO;
using AttnDreamBooth.Models.UNet;
using TorchSharp;

namespace AttnDreamBooth.Tests.Parity;

internal static class UNetParityHelpers
{
    public const string Sample = "unet.sample";
    public const string Timestep = "unet.timestep";
    public const string EncoderHiddenStates = "unet.encoder_hidden_states";
    public const string OutSample = "unet.out_sample";
    public const string ProbsSuffix = ".attention_probs";

    public static bool IsUNetCase(FixtureCase fixture) =>
        fixture.Kind == "sd_pipeline" && Directory.Exists(fixture.PipelineFolder) && fixture.HasTensor(OutSample);

    public static string UNetFolder(FixtureCase fixture) => DiffusersFolder.Open(fixture.PipelineFolder).ComponentPath("unet");

    public static UNet2DConditionModel Load(FixtureCase fixture)
    {
        var model = UNet2DConditionModel.FromFolder(UNetFolder(fixture));
        model.eval();
        return model;
    }

    /// <summary>The attention-probability tensors: "unet.&lt;layer path&gt;.attention_probs" → layer path.</summary>
    public static IReadOnlyDictionary<string, string> ProbabilityTensors(FixtureCase fixture) =>
        fixture.Manifest.Tensors.Values
            .Where(t => t.Component == "unet" && t.Name.StartsWith("unet.", StringComparison.Ordinal) && t.Name.EndsWith(ProbsSuffix, StringComparison.Ordinal))
            .ToDictionary(t => t.Name, t => t.Name["unet.".Length..^ProbsSuffix.Length], StringComparer.Ordinal);
}
