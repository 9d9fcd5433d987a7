using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Lora;

/// <summary>
/// Extracts a LoRA from a full fine-tune, as kohya's <c>extract_lora_from_models</c> does: for every selected layer,
/// the delta ΔW = W_tuned − W_base (conv weights flattened to <c>[out, in·kh·kw]</c>) is factorised by a truncated SVD,
/// ΔW ≈ U_k Σ_k V_kᵀ, and stored as up = U_k Σ_k^½, down = Σ_k^½ V_kᵀ (reshaped back to the LoRA conv shapes), alpha = rank.
/// Unlike kohya, values are not clamped to a quantile, so a delta of rank ≤ k is recovered exactly (to float32).
/// </summary>
internal static class LoraExtractor
{
    /// <summary>Extracts the LoRA of <paramref name="tunedUNet"/> over <paramref name="baseUNet"/> (and optionally of the text
    /// encoders). The models must have the same architecture; they are only read.</summary>
    /// <exception cref="ArgumentException">A layer of the base model is missing from, or shaped differently in, the tuned one.</exception>
    public static LoraExtraction Extract(nn.Module baseUNet, nn.Module tunedUNet, nn.Module? baseTextEncoder, nn.Module? tunedTextEncoder,
        LoraExtractionOptions options, IProgress<LoraLayerExtraction>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(baseUNet);
        ArgumentNullException.ThrowIfNull(tunedUNet);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if ((baseTextEncoder is null) != (tunedTextEncoder is null))
            throw new ArgumentException("Give both text encoders or neither.", nameof(tunedTextEncoder));

        var targets = new List<(LoraComponent, string)>();
        targets.AddRange(LoraTargets.Select(baseUNet, options.UNetModules).Select(p => (LoraComponent.UNet, p)));
        if (baseTextEncoder is not null)
            targets.AddRange(LoraTargets.Select(baseTextEncoder, options.TextEncoderModules).Select(p => (LoraComponent.TextEncoder, p)));
        var tunedLayers = new Dictionary<LoraComponent, Dictionary<string, nn.Module<Tensor, Tensor>>>
        {
            [LoraComponent.UNet] = LoraTargets.Layers(tunedUNet).ToDictionary(l => l.Path, l => l.Layer, StringComparer.Ordinal),
        };
        if (tunedTextEncoder is not null)
            tunedLayers[LoraComponent.TextEncoder] = LoraTargets.Layers(tunedTextEncoder).ToDictionary(l => l.Path, l => l.Layer, StringComparer.Ordinal);

        var network = LoraNetworkFactory.Empty(baseUNet, baseTextEncoder);
        var report = new List<LoraLayerExtraction>();
        var unchanged = new List<string>();
        var probe = new Generator((ulong)options.Seed);
        try
        {
            foreach (var (component, path) in targets)
            {
                ct.ThrowIfCancellationRequested();
                var baseLayer = network.Layer(component, path);
                if (!tunedLayers[component].TryGetValue(path, out var tunedLayer))
                    throw LoraErrors.Target(path, $"the tuned {component} has no Linear/Conv2d layer here.");
                var shape = LoraAdapter.Describe(component, path, baseLayer);
                if (!LoraAdapter.Describe(component, path, tunedLayer).Matches(shape))
                    throw LoraErrors.Target(path, $"the base layer is {shape} but the tuned one is {LoraAdapter.Describe(component, path, tunedLayer)}.");
                var entry = ExtractLayer(network, component, path, baseLayer, tunedLayer, shape, options, probe);
                if (entry is null)
                {
                    unchanged.Add((component == LoraComponent.UNet ? "unet:" : "text_encoder:") + path);
                    continue;
                }
                report.Add(entry);
                progress?.Report(entry);
            }
        }
        catch
        {
            network.Dispose();
            throw;
        }
        return new LoraExtraction(network, report, unchanged);
    }

    /// <summary>Runs <see cref="Extract"/> on a dedicated thread (TorchSharp dispose scopes are per thread).</summary>
    public static Task<LoraExtraction> ExtractAsync(nn.Module baseUNet, nn.Module tunedUNet, nn.Module? baseTextEncoder, nn.Module? tunedTextEncoder,
        LoraExtractionOptions options, IProgress<LoraLayerExtraction>? progress = null, CancellationToken ct = default) =>
        Task.Factory.StartNew(() => Extract(baseUNet, tunedUNet, baseTextEncoder, tunedTextEncoder, options, progress, ct), ct,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static LoraLayerExtraction? ExtractLayer(LoraNetwork network, LoraComponent component, string path, nn.Module<Tensor, Tensor> baseLayer,
        nn.Module<Tensor, Tensor> tunedLayer, LoraAdapter.LayerShape shape, LoraExtractionOptions options, Generator probe)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w0 = LoraAdapter.WeightOf(baseLayer).detach().to_type(ScalarType.Float64).cpu();
        var w1 = LoraAdapter.WeightOf(tunedLayer).detach().to_type(ScalarType.Float64).cpu();
        var delta = w1.sub(w0).flatten(1);
        double deltaNorm = delta.norm().item<double>();
        double baseNorm = w0.norm().item<double>();
        if (!double.IsFinite(deltaNorm)) throw LoraErrors.Target(path, "the weight delta is not finite.");
        if (deltaNorm <= options.MinRelativeDelta * baseNorm || deltaNorm == 0) return null;

        var (u, s, vh) = linalg.svd(delta, fullMatrices: false);
        var energy = s.pow(Kept(2));
        double total = energy.sum().item<double>();
        int maxRank = (int)s.shape[0];
        int rank;
        if (options.Rank is { } fixedRank) rank = Math.Min(fixedRank, maxRank);
        else
        {
            var cumulative = energy.cumsum(0).div(Kept(total));
            // Smallest k with kept energy ≥ threshold (the 1e-12 absorbs the rounding of a threshold of exactly 1).
            long reach = cumulative.lt(Kept(options.EnergyThreshold!.Value - 1e-12)).sum().item<long>() + 1;
            rank = (int)Math.Min(Math.Min(reach, options.MaxRank), maxRank);
        }
        var root = s[..rank].sqrt();
        var up = u[.., ..rank].mul(root.unsqueeze(0));
        var down = vh[..rank].mul(root.unsqueeze(1));
        double discarded = Math.Sqrt(Math.Max(0, energy[rank..].sum().item<double>()) / total);

        var adapter = new LoraAdapter(component, path, baseLayer, rank, rank);
        adapter.DownWeight.copy_(down.reshape(adapter.DownWeight.shape).to_type(adapter.DownWeight.dtype));
        adapter.UpWeight.copy_(up.reshape(adapter.UpWeight.shape).to_type(adapter.UpWeight.dtype));
        network.Add(adapter);

        var stored = adapter.WeightDelta(1).to_type(ScalarType.Float64).cpu().flatten(1);
        var residual = delta.sub(stored);
        double relative = residual.norm().item<double>() / deltaNorm;

        // Output difference on a fixed input: the layer's change the LoRA misses, relative to the fine-tune's change.
        var full = delta.reshape(shape.WeightShape);
        var miss = residual.reshape(shape.WeightShape);
        Tensor ApplyTo(Tensor x, Tensor w) => shape.Kind == LoraLayerKind.Linear
            ? x.mm(w.t())
            : nn.functional.conv2d(x, w, strides: [shape.Stride.Item1, shape.Stride.Item2], padding: [shape.Padding.Item1, shape.Padding.Item2],
                dilation: [shape.Dilation.Item1, shape.Dilation.Item2]);
        var x = shape.Kind == LoraLayerKind.Linear
            ? randn([options.ProbeBatch, shape.In], dtype: ScalarType.Float64, generator: probe)
            : randn([options.ProbeBatch, shape.In, options.ProbeSize, options.ProbeSize], dtype: ScalarType.Float64, generator: probe);
        var changed = ApplyTo(x, full);
        var missed = ApplyTo(x, miss);
        double changedNorm = changed.norm().item<double>();
        double outputRelative = changedNorm == 0 ? 0 : missed.norm().item<double>() / changedNorm;
        double outputMax = missed.abs().max().item<double>();
        return new LoraLayerExtraction(component, path, rank, deltaNorm, relative, discarded, outputRelative, outputMax) { Kind = shape.Kind };
    }
}
