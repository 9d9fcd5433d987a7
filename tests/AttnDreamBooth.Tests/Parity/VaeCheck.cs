using AttnDreamBooth.Models.Vae;
using AttnDreamBooth.Tests.Models.Vae;
using TorchSharp;
using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/vae": the VAE loaded from the case's pipeline folder reproduces every <c>vae.*</c> reference tensor:
/// the encoder output and moments (captured with forward hooks on the real Encode path), the posterior's mean,
/// clamped log-variance and std, the latent sample for the stored noise (and for the reference's generator
/// seed), post_quant_conv's output and the decoded image, batched and sliced.
/// </summary>
public sealed class VaeCheck : IParityCheck
{
    private const string Prefix = "vae.";

    public string Name => "vae";

    public IReadOnlyCollection<string> Components => ["vae"];

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "sd_pipeline" && (fixture.HasTensor("vae.encode.image") || fixture.HasTensor("vae.decode.latents"));

    // Every vae tensor of the manifest: one this check does not know stays untouched and fails the harness.
    public IEnumerable<string> Claims(FixtureCase fixture) =>
        fixture.Manifest.Tensors.Values.Where(t => t.Component == "vae").Select(t => t.Name);

    public void Run(ParityContext context)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var vae = AutoencoderKL.FromFolder(Path.Combine(context.Case.PipelineFolder, "vae"));
        AssertFactsMatchConfig(context, vae);
        if (context.Has("vae.encode.image")) CheckEncode(context, vae);
        if (context.Has("vae.decode.latents")) CheckDecode(context, vae);
    }

    private static void AssertFactsMatchConfig(ParityContext context, AutoencoderKL vae)
    {
        var facts = context.Manifest.DerivedFacts;
        if (facts.TryGetProperty("vae.scaling_factor", out var scaling) && Math.Abs(scaling.GetDouble() - vae.ScalingFactor) > 1e-12)
            throw new XunitException($"{context.Case.Name}: scaling_factor {vae.ScalingFactor} differs from derived_facts {scaling.GetDouble()}");
        if (facts.TryGetProperty("vae.downsample_factor", out var factor) && factor.GetInt32() != vae.DownsampleFactor)
            throw new XunitException($"{context.Case.Name}: DownsampleFactor {vae.DownsampleFactor} differs from derived_facts {factor.GetInt32()}");
    }

    private static void CheckEncode(ParityContext context, AutoencoderKL vae)
    {
        var image = context.Tensor("vae.encode.image");
        torch.Tensor? encoderOutput = null;
        using (VaeHooks.Capture(vae.Encoder, t => encoderOutput = t))
        {
            using var posterior = vae.Encode(image);
            using var captured = encoderOutput ?? throw new XunitException("the encoder hook did not fire");
            AssertIfPresent(context, "vae.encode.encoder_output", captured);
            AssertIfPresent(context, "vae.encode.moments", posterior.Parameters);
            AssertIfPresent(context, "vae.encode.mean", posterior.Mean);
            AssertIfPresent(context, "vae.encode.logvar", posterior.LogVar);
            AssertIfPresent(context, "vae.encode.std", posterior.Std);
            if (context.Has("vae.encode.sample_noise"))
            {
                var fromNoise = posterior.SampleWithNoise(context.Tensor("vae.encode.sample_noise"));
                AssertIfPresent(context, "vae.encode.latent_sample", fromNoise);
            }
            if (context.Has("vae.encode.latent_sample") && context.Manifest.DerivedFacts.TryGetProperty("vae.encode.sample_generator_seed", out var seed))
            {
                // libtorch's CPU generator is the reference's, so the same seed must give the same draw.
                var drawn = posterior.Sample(new torch.Generator(seed.GetUInt64()));
                context.AssertClose("vae.encode.latent_sample", drawn);
            }
        }

        vae.UseSlicing = true;
        try
        {
            using var sliced = vae.Encode(image);
            AssertIfPresent(context, "vae.encode.moments", sliced.Parameters);
        }
        finally { vae.UseSlicing = false; }
    }

    private static void CheckDecode(ParityContext context, AutoencoderKL vae)
    {
        var latents = context.Tensor("vae.decode.latents");
        torch.Tensor? postQuant = null;
        var postQuantConv = vae.named_modules().Single(m => m.name == "post_quant_conv").module;
        using (VaeHooks.Capture(postQuantConv, t => postQuant = t))
        {
            var sample = vae.Decode(latents);
            using var captured = postQuant ?? throw new XunitException("the post_quant_conv hook did not fire");
            AssertIfPresent(context, "vae.decode.post_quant_conv_output", captured);
            AssertIfPresent(context, "vae.decode.sample", sample);
        }

        vae.UseSlicing = true;
        try { AssertIfPresent(context, "vae.decode.sample", vae.Decode(latents)); }
        finally { vae.UseSlicing = false; }
    }

    private static void AssertIfPresent(ParityContext context, string name, torch.Tensor actual)
    {
        if (context.Has(name)) context.AssertClose(name, actual);
    }
}
