using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Tests.IO.SingleFile;
using TorchSharp;
using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/single-file": the case's original-layout <c>single-file/model.safetensors</c>, opened against the
/// pipeline's configs, gives every UNet, VAE and text-encoder tensor of <c>pipeline/</c> bit for bit, with nothing
/// left over; and the pipeline components built from the file alone (<see cref="StableDiffusionComponents.LoadSingleFile"/>,
/// configs from <c>pipeline/</c>) reproduce the case's references: the U-Net output, the VAE decode and encode moments
/// and the text encoder's last hidden state and pooled output (claimed here too; the folder-based checks claim them as
/// well).
/// </summary>
public sealed class SingleFileCheck : IParityCheck
{
    public string Name => "single-file";
    public IReadOnlyCollection<string> Components => [];

    public static string FileOf(FixtureCase fixture) => Path.Combine(fixture.Folder, "single-file", "model.safetensors");

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "sd_pipeline" && Directory.Exists(fixture.PipelineFolder) && File.Exists(FileOf(fixture));

    /// <summary>Reference outputs recomputed through the networks loaded from the single file, with their inputs.</summary>
    private static readonly (string Output, string[] Inputs)[] Reproduced =
    [
        ("unet.out_sample", ["unet.sample", "unet.timestep", "unet.encoder_hidden_states"]),
        ("vae.decode.sample", ["vae.decode.latents"]),
        ("vae.encode.moments", ["vae.encode.image"]),
        ("text_encoder.last_hidden_state", ["text_encoder.input_ids"]),
        ("text_encoder.pooler_output", ["text_encoder.input_ids"]),
    ];

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        Reproduced.Where(r => fixture.HasTensor(r.Output) && r.Inputs.All(fixture.HasTensor)).Select(r => r.Output);

    public void Run(ParityContext context)
    {
        string pipeline = context.Case.PipelineFolder;
        using var checkpoint = SingleFileCheckpoint.Open(FileOf(context.Case), SingleFileArchitecture.FromFolder(pipeline));
        Assert.Equal(SingleFileComponents.All, checkpoint.Components);
        if (context.Case.Manifest.Root.TryGetProperty("single_file", out var facts)
            && facts.TryGetProperty("text_encoder_layout", out var layout) && layout.TryGetProperty("prefix", out var prefix))
        {
            Assert.Equal(prefix.GetString(), SingleFileComponents.OriginalPrefix(SingleFileComponents.TextEncoder, checkpoint.Family));
        }
        var problems = new List<string>();
        foreach (string component in SingleFileComponents.All)
        {
            using var expected = StateDictSource.OpenComponent(Path.Combine(pipeline, component));
            var actual = checkpoint.OpenComponent(component);
            problems.AddRange(StateDictComparison.Differences(expected, actual).Select(p => $"{component}: {p}"));
        }
        if (problems.Count > 0) throw new XunitException($"{context.Case.Name}: {problems.Count} differences:\n  {string.Join("\n  ", problems.Take(20))}");
        // Only keys the layout documents as SD-unused may be skipped.
        Assert.All(checkpoint.SkippedKeys, k => Assert.Equal(SingleFileKeyKind.Ignored, k.Kind));

        ReproduceReferences(context, FileOf(context.Case), pipeline);
    }

    private static void ReproduceReferences(ParityContext context, string file, string pipeline)
    {
        using var components = StableDiffusionComponents.LoadSingleFile(file, pipeline);
        Assert.Equal(Path.GetFullPath(file), components.ModelSource);
        var folderScheduler = AttnDreamBooth.Schedulers.SchedulerConfig.Load(DiffusersFolder.Open(pipeline).ConfigPath("scheduler"));
        Assert.Equal(folderScheduler.PredictionType, components.SchedulerConfig.PredictionType);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        bool Has(string output) => Reproduced.Single(r => r.Output == output).Inputs.Append(output).All(context.Has);

        if (Has("unet.out_sample"))
        {
            components.UNet.eval();
            context.AssertClose("unet.out_sample", components.UNet.call(context.Tensor("unet.sample"), context.Tensor("unet.timestep"), context.Tensor("unet.encoder_hidden_states")));
        }
        if (Has("vae.decode.sample")) context.AssertClose("vae.decode.sample", components.Vae.Decode(context.Tensor("vae.decode.latents")));
        if (Has("vae.encode.moments"))
        {
            using var posterior = components.Vae.Encode(context.Tensor("vae.encode.image"));
            context.AssertClose("vae.encode.moments", posterior.Parameters);
        }
        if (Has("text_encoder.last_hidden_state") || Has("text_encoder.pooler_output"))
        {
            using var output = components.TextEncoder.Forward(context.Tensor("text_encoder.input_ids"));
            if (Has("text_encoder.last_hidden_state")) context.AssertClose("text_encoder.last_hidden_state", output.LastHiddenState);
            if (Has("text_encoder.pooler_output")) context.AssertClose("text_encoder.pooler_output", output.PoolerOutput);
        }
    }
}
