using System.Text.Json;
using AttnDreamBooth.Personalization;
using TorchSharp;
using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/method-regularization": the official regularization on the synthetic maps of <c>method.reg.*</c> —
/// loss and gradients for both weight settings, per-token statistics and the unweighted terms. The layer count and
/// shapes come from <c>derived_facts["method.reg.layers"]</c>.
/// </summary>
/// <remarks>
/// <see cref="Components"/> stays empty until the stage checks exist: the manifest's component "method" also holds
/// the <c>method.stage*</c> tensors, which need the full pipeline, and listing it here would make the coverage test
/// demand them.
/// </remarks>
public sealed class MethodRegularizationCheck : IParityCheck
{
    public string Name => "method-regularization";

    public IReadOnlyCollection<string> Components => [];

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "sd_pipeline" && fixture.HasTensor("method.reg.loss") && fixture.Manifest.DerivedFacts.TryGetProperty("method.reg.layers", out _);

    public IEnumerable<string> Claims(FixtureCase fixture)
    {
        int layers = Layers(fixture.Manifest).Count;
        yield return "method.reg.token_index_v";
        yield return "method.reg.token_index_c";
        yield return "method.reg.weights";
        yield return "method.reg.loss";
        yield return "method.reg.mean_only.weights";
        yield return "method.reg.mean_only.loss";
        yield return "method.reg.mean_term";
        yield return "method.reg.var_term";
        for (int l = 0; l < layers; l++)
        {
            yield return $"method.reg.maps.{l}";
            yield return $"method.reg.grad.{l}";
            yield return $"method.reg.mean_only.grad.{l}";
            yield return $"method.reg.token_mean.{l}";
            yield return $"method.reg.token_var.{l}";
        }
    }

    public void Run(ParityContext ctx)
    {
        using var scope = torch.NewDisposeScope();
        var layers = Layers(ctx.Manifest);
        var iv = ctx.Tensor("method.reg.token_index_v");
        var ic = ctx.Tensor("method.reg.token_index_c");
        var maps = new torch.Tensor[layers.Count];
        for (int l = 0; l < layers.Count; l++)
        {
            maps[l] = ctx.Tensor($"method.reg.maps.{l}");
            var (heads, pixels) = layers[l];
            if (maps[l].dim() != 4 || maps[l].shape[1] != heads || maps[l].shape[2] != pixels)
                throw new XunitException($"{ctx.Case.Name}: method.reg.maps.{l} has shape [{string.Join(", ", maps[l].shape)}], but derived_facts say {heads} heads x {pixels} pixels");
            var (mean, variance) = AttentionMapRegularization.Statistics(maps[l]);
            ctx.AssertClose($"method.reg.token_mean.{l}", mean);
            ctx.AssertClose($"method.reg.token_var.{l}", variance);
        }

        var pairs = maps.Select((m, l) => AttentionMapRegularization.SelectTokens(m, iv, ic, l.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
        var terms = AttentionMapRegularization.ComputeTerms(pairs);
        ctx.AssertClose("method.reg.mean_term", terms.MeanTerm);
        ctx.AssertClose("method.reg.var_term", terms.VarianceTerm);

        CheckLossAndGradients(ctx, maps, iv, ic, "method.reg.weights", "method.reg.loss", "method.reg.grad");
        CheckLossAndGradients(ctx, maps, iv, ic, "method.reg.mean_only.weights", "method.reg.mean_only.loss", "method.reg.mean_only.grad");
    }

    private static void CheckLossAndGradients(ParityContext ctx, torch.Tensor[] maps, torch.Tensor iv, torch.Tensor ic, string weightsName, string lossName, string gradPrefix)
    {
        var w = ctx.Tensor(weightsName);
        // The official script passes the weights as Python floats parsed from the command line; the stored float32
        // values are converted back to the nearest double the same way ("0.1" -> 0.1f -> 0.1).
        double wMean = double.Parse(w[0].item<float>().ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
        double wVar = double.Parse(w[1].item<float>().ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture);
        var leaves = maps.Select(m => m.detach().clone().requires_grad_(true)).ToArray();
        var loss = new AttentionMapRegularization(wMean, wVar).Compute(leaves, iv, ic);
        loss.backward();
        ctx.AssertClose(lossName, loss);
        for (int l = 0; l < leaves.Length; l++)
            ctx.AssertClose($"{gradPrefix}.{l}", leaves[l].grad ?? throw new XunitException($"{ctx.Case.Name}: map {l} received no gradient"));
    }

    private static IReadOnlyList<(long Heads, long Pixels)> Layers(ReferenceManifest manifest)
    {
        var fact = manifest.Fact("method.reg.layers");
        return fact.EnumerateArray()
            .Select(e => (e.GetProperty("heads").GetInt64(), e.TryGetProperty("pixels", out var p) && p.ValueKind == JsonValueKind.Number
                ? p.GetInt64()
                : e.GetProperty("height").GetInt64() * e.GetProperty("width").GetInt64()))
            .ToArray();
    }
}
