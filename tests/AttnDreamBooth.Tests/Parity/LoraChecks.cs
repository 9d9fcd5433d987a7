using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Text;
using TorchSharp;
using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/lora-kohya" and "&lt;case&gt;/lora-diffusers" on every <c>sd_lora</c> case: the case's LoRA file (in that
/// layout) is loaded with <see cref="LoraNetwork.Load"/> onto the base case's U-Net and text encoder, and every variant of
/// <c>derived_facts["lora.variants"]</c> is reproduced: <c>base</c> (adapters not installed), <c>lora</c> (installed,
/// runtime scale), <c>fused</c> (merged at the scale), each giving the text encoder's last hidden state, the U-Net on
/// the stored encoder states and the U-Net on the text encoder's output; the fused weights; unmerging restores the
/// base weights; the file's modules are exactly the manifest's <c>lora.modules</c> and saving the loaded network in the
/// same layout gives the file's tensors back.
/// </summary>
public abstract class LoraCheck : IParityCheck
{
    private static readonly string[] Inputs = ["text_encoder.input_ids", "unet.sample", "unet.timestep", "unet.encoder_hidden_states"];
    private static readonly string[] Outputs = ["text_encoder.last_hidden_state", "unet.out_sample", "pipeline.noise_pred"];
    private const string FusedWeights = "fused.weights.";

    protected abstract LoraFileFormat Format { get; }

    public abstract string Name { get; }

    public IReadOnlyCollection<string> Components => ["lora"];

    private string FilePath(FixtureCase fixture)
    {
        var files = fixture.Manifest.Root.GetProperty("lora").GetProperty("files");
        string key = Format == LoraFileFormat.Kohya ? "kohya" : "diffusers";
        return Path.Combine(fixture.Folder, files.GetProperty(key).GetProperty("path").GetString()!);
    }

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "sd_lora" && File.Exists(FilePath(fixture)) && Inputs.All(fixture.HasTensor)
        && Directory.Exists(BasePipeline(fixture));

    public IEnumerable<string> Claims(FixtureCase fixture) => fixture.Manifest.Tensors.Keys;

    private static string BasePipeline(FixtureCase fixture) =>
        Path.GetFullPath(Path.Combine(fixture.Folder, fixture.Manifest.Root.GetProperty("base_pipeline").GetString()!));

    public void Run(ParityContext context)
    {
        string pipeline = BasePipeline(context.Case);
        string file = FilePath(context.Case);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var unet = UNet2DConditionModel.FromFolder(Path.Combine(pipeline, "unet"));
        using var textEncoder = ClipTextModel.FromFolder(Path.Combine(pipeline, "text_encoder"));
        unet.eval();
        textEncoder.eval();
        var baseWeights = unet.state_dict().ToDictionary(p => "unet." + p.Key, p => p.Value.detach().clone())
            .Concat(textEncoder.state_dict().ToDictionary(p => "text_encoder." + p.Key, p => p.Value.detach().clone()))
            .ToDictionary(p => p.Key, p => p.Value);

        // The prompts tokenize to the stored ids.
        var prompts = context.Manifest.Fact("prompts").EnumerateArray().Select(p => p.GetString()!).ToArray();
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(pipeline, "tokenizer"));
        context.AssertClose("text_encoder.input_ids", tokenizer.EncodeToTensor(prompts));

        using var network = LoraNetwork.Load(file, unet, textEncoder);
        CheckModules(context, network);
        CheckRoundTrip(context, network, file);

        foreach (var variant in context.Manifest.Fact("lora.variants").EnumerateObject())
        {
            string kind = variant.Value.GetProperty("kind").GetString()!;
            double scale = variant.Value.GetProperty("scale").ValueKind == JsonValueKind.Number ? variant.Value.GetProperty("scale").GetDouble() : 1.0;
            switch (kind)
            {
                case "base":
                    Assert.False(network.IsInstalled);
                    CompareOutputs(context, variant.Name, unet, textEncoder);
                    break;
                case "lora":
                    network.Install();
                    network.SetScale(scale);
                    CompareOutputs(context, variant.Name, unet, textEncoder);
                    network.SetScale(1.0);
                    network.Remove();
                    break;
                case "fused":
                    network.Merge(scale);
                    // A runtime scale has no effect once merged (as after diffusers' fuse_lora).
                    Assert.Throws<InvalidOperationException>(() => network.SetScale(0.25));
                    CompareOutputs(context, variant.Name, unet, textEncoder);
                    CompareFusedWeights(context, variant.Name, unet, textEncoder);
                    network.Unmerge();
                    network.Remove();
                    AssertRestored(context, baseWeights, unet, textEncoder);
                    break;
                default:
                    throw new XunitException($"{context.Case.Name}: unknown LoRA variant kind '{kind}' of '{variant.Name}'.");
            }
        }
    }

    private static void CompareOutputs(ParityContext context, string variant, UNet2DConditionModel unet, ClipTextModel textEncoder)
    {
        using var scope = torch.NewDisposeScope();
        using var text = textEncoder.Forward(context.Tensor("text_encoder.input_ids"));
        var sample = context.Tensor("unet.sample");
        var timestep = context.Tensor("unet.timestep");
        string Name(string output) => $"{variant}.{output}";
        if (context.Has(Name("text_encoder.last_hidden_state"))) context.AssertClose(Name("text_encoder.last_hidden_state"), text.LastHiddenState);
        if (context.Has(Name("unet.out_sample")))
            context.AssertClose(Name("unet.out_sample"), unet.call(sample, timestep, context.Tensor("unet.encoder_hidden_states")));
        if (context.Has(Name("pipeline.noise_pred"))) context.AssertClose(Name("pipeline.noise_pred"), unet.call(sample, timestep, text.LastHiddenState));
        if (!Outputs.Any(o => context.Has(Name(o)))) throw new XunitException($"{context.Case.Name}: variant '{variant}' has no output tensors.");
    }

    private static void CompareFusedWeights(ParityContext context, string variant, UNet2DConditionModel unet, ClipTextModel textEncoder)
    {
        string prefix = variant + ".weights.";
        var unetWeights = unet.state_dict();
        var textWeights = textEncoder.state_dict();
        foreach (var name in context.Manifest.Tensors.Keys.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            string rest = name[prefix.Length..];
            var weight = rest.StartsWith("unet.", StringComparison.Ordinal) ? unetWeights[rest["unet.".Length..]]
                : rest.StartsWith("text_encoder.", StringComparison.Ordinal) ? textWeights[rest["text_encoder.".Length..]]
                : throw new XunitException($"{context.Case.Name}: '{name}' names neither the U-Net nor the text encoder.");
            context.AssertClose(name, weight);
        }
    }

    private static void AssertRestored(ParityContext context, Dictionary<string, torch.Tensor> baseWeights, UNet2DConditionModel unet, ClipTextModel textEncoder)
    {
        var now = unet.state_dict().Select(p => ("unet." + p.Key, p.Value)).Concat(textEncoder.state_dict().Select(p => ("text_encoder." + p.Key, p.Value)));
        double worst = 0;
        foreach (var (name, value) in now)
        {
            worst = Math.Max(worst, value.sub(baseWeights[name]).abs().max().item<float>());
        }
        if (worst > 1e-6) throw new XunitException($"{context.Case.Name}: unmerging left the weights {worst:g3} away from the base.");
    }

    private static void CheckModules(ParityContext context, LoraNetwork network)
    {
        var expected = context.Manifest.Root.GetProperty("lora").GetProperty("modules").EnumerateArray()
            .Select(m => (Component: m.GetProperty("component").GetString() == "unet" ? LoraComponent.UNet : LoraComponent.TextEncoder,
                Module: m.GetProperty("module").GetString()!, Kohya: m.GetProperty("kohya_prefix").GetString()!,
                Down: m.GetProperty("down_shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                Up: m.GetProperty("up_shape").EnumerateArray().Select(d => d.GetInt64()).ToArray()))
            .ToArray();
        Assert.Equal(expected.Length, network.Adapters.Count);
        Assert.Empty(network.LoadReport!.UnknownKeys);
        foreach (var m in expected)
        {
            var adapter = network.Find(m.Component, m.Module) ?? throw new XunitException($"{context.Case.Name}: no adapter on {m.Component} '{m.Module}'.");
            Assert.Equal(m.Kohya, adapter.KohyaName);
            Assert.Equal(m.Down, adapter.DownWeight.shape);
            Assert.Equal(m.Up, adapter.UpWeight.shape);
            Assert.Equal(context.Manifest.Fact("lora.rank").GetInt32(), adapter.Rank);
        }
    }

    private void CheckRoundTrip(ParityContext context, LoraNetwork network, string file)
    {
        using var scope = torch.NewDisposeScope();
        using var original = SafetensorsFile.Open(file);
        var written = LoraFile.ToStateDict(network, Format);
        Assert.Equal(original.Names.Order(StringComparer.Ordinal), written.Keys.Order(StringComparer.Ordinal));
        foreach (string name in original.Names)
        {
            var stored = original.ReadTensor(name);
            if (!written[name].shape.SequenceEqual(stored.shape) || !written[name].eq(stored).all().item<bool>())
                throw new XunitException($"{context.Case.Name}: saving the loaded network as {Format} changes '{name}'.");
        }
    }
}

/// <summary>The kohya/A1111 file of an <c>sd_lora</c> case.</summary>
public sealed class LoraKohyaCheck : LoraCheck
{
    protected override LoraFileFormat Format => LoraFileFormat.Kohya;

    public override string Name => "lora-kohya";
}

/// <summary>The diffusers file of an <c>sd_lora</c> case.</summary>
public sealed class LoraDiffusersCheck : LoraCheck
{
    protected override LoraFileFormat Format => LoraFileFormat.Diffusers;

    public override string Name => "lora-diffusers";
}
