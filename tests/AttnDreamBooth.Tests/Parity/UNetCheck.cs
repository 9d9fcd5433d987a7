using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Tests.Models.UNet;
using TorchSharp;
using Xunit.Sdk;
using static AttnDreamBooth.Tests.Parity.UNetParityHelpers;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/unet": the U-Net output for per-row and scalar timesteps and every debug intermediate
/// ("unet.debug.&lt;module path&gt;", captured with forward hooks on that module), plus the heads-per-block facts.
/// </summary>
public sealed class UNetCheck : IParityCheck
{
    private const string DebugPrefix = "unet.debug.";

    public string Name => "unet";
    public IReadOnlyCollection<string> Components => ["unet"];
    public bool AppliesTo(FixtureCase fixture) => IsUNetCase(fixture);

    public IEnumerable<string> Claims(FixtureCase fixture)
    {
        var probabilities = ProbabilityTensors(fixture);
        return fixture.Manifest.Tensors.Values
            .Where(t => t.Component == "unet" && t.Name.StartsWith("unet.", StringComparison.Ordinal) && !probabilities.ContainsKey(t.Name))
            .Select(t => t.Name);
    }

    public void Run(ParityContext context)
    {
        using var scope = torch.NewDisposeScope();
        using var unet = Load(context.Case);
        CheckHeadFacts(context, unet.Config);

        var sample = context.Tensor(Sample);
        var timestep = context.Tensor(Timestep);
        var encoderHiddenStates = context.Tensor(EncoderHiddenStates);
        var captured = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        var debugNames = context.Manifest.WithPrefix(DebugPrefix).Select(t => t.Name).ToArray();
        var removers = debugNames.Select(name => DebugHooks.Capture(unet, name[DebugPrefix.Length..], t => captured[name] = t)).ToList();

        using (torch.no_grad())
        {
            context.AssertClose(OutSample, unet.call(sample, timestep, encoderHiddenStates));
        }
        foreach (var remove in removers) remove();
        foreach (string name in debugNames)
        {
            if (!captured.TryGetValue(name, out var value)) throw new XunitException($"{context.Case.Name}: the hook for '{name}' never fired");
            context.AssertClose(name, value);
        }

        const string scalarPrefix = "unet.scalar_timestep.";
        if (context.Has(scalarPrefix + "timestep"))
        {
            var scalar = context.Tensor(scalarPrefix + "timestep");
            Assert.Equal(0, scalar.dim());
            using (torch.no_grad())
            {
                context.AssertClose(scalarPrefix + "out_sample", unet.call(sample, scalar, encoderHiddenStates));
            }
        }
    }

    private static void CheckHeadFacts(ParityContext context, UNetConfig config)
    {
        if (!context.Manifest.DerivedFacts.TryGetProperty("unet.heads_per_down_block", out var down)) return;
        Assert.Equal(down.EnumerateArray().Select(e => e.GetInt32()), config.HeadsPerDownBlock);
        Assert.Equal(context.Manifest.Fact("unet.head_dim_per_down_block").EnumerateArray().Select(e => e.GetInt32()), config.HeadDimPerDownBlock);
        Assert.Equal(context.Manifest.Fact("unet.heads_per_up_block").EnumerateArray().Select(e => e.GetInt32()), config.HeadsPerUpBlock);
        Assert.Equal(context.Manifest.Fact("unet.heads_mid_block").GetInt32(), config.HeadsMidBlock);
    }
}
