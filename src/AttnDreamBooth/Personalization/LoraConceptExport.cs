using System.Globalization;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.Models.UNet;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The LoRA export: the base U-Net is rebuilt from the base weights, <see cref="LoraExtractor"/> factorises every
/// selected layer's fine-tuning delta at the chosen rank, and the adapters are written in kohya's format (what A1111,
/// ComfyUI and diffusers' <c>load_lora_weights</c> read). A concept trained with LoRA adapters is written as those
/// adapters, exactly, when the options allow them (their rank within <see cref="ConceptExportOptions.LoraRank"/>, their
/// layers within <see cref="ConceptExportOptions.LoraModules"/>); otherwise it is extracted like a full fine-tune.
/// Changes a LoRA cannot hold (biases, norms, layers outside the selected groups) are measured and reported instead of
/// dropped silently.
/// </summary>
internal static class LoraConceptExport
{
    private const string Stage = "extracting the LoRA";

    public static LoraExportReport Write(ExportContext context, string temp)
    {
        var c = context.Components;
        var options = context.Options;
        var family = ConceptExporter.FamilyOf(c, options.Family);
        using var baseUNet = new UNet2DConditionModel(c.UNet.Config, torch.CPU);
        foreach (var p in baseUNet.parameters()) p.requires_grad = false;
        c.Weights.Load(baseUNet, "unet");
        context.CancellationToken.ThrowIfCancellationRequested();

        var trained = context.Model.Pipeline.ConceptLora;
        bool asTrained = trained is not null && trained.Adapters.All(a => a.Component == LoraComponent.UNet
            && (options.LoraRank is not { } r || a.Rank <= r) && LoraTargets.Matches(a.ModulePath, options.LoraModules));
        using var extraction = asTrained ? null : Extract(context, baseUNet);
        var network = asTrained ? trained! : extraction!.Network;
        var layers = asTrained ? trained!.Adapters.Select(Exact).ToArray() : extraction!.Layers;

        var covered = new HashSet<string>(LoraTargets.Select(baseUNet, options.LoraModules).Select(p => p + ".weight"), StringComparer.Ordinal);
        var notCarried = NotCarried(baseUNet, c.UNet, covered);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ss_v2"] = family == StableDiffusionFamily.Sd2 ? "True" : "False",
            ["ss_base_model_version"] = family == StableDiffusionFamily.Sd2 ? "sd_v2" : "sd_v1",
            ["ss_sd_model_name"] = context.BaseModel.Name,
            ["attndreambooth_token"] = context.Model.Token,
            ["attndreambooth_trigger_word"] = context.Trigger,
            ["attndreambooth_category"] = context.Model.Category,
            ["attndreambooth_base_fingerprint"] = context.BaseModel.Fingerprint,
            ["attndreambooth_lora_rank"] = asTrained
                ? string.Join(",", trained!.Adapters.Select(a => a.Rank).Distinct().Select(r => r.ToString(CultureInfo.InvariantCulture)))
                : options.LoraRank?.ToString(CultureInfo.InvariantCulture) ?? "full",
            ["attndreambooth_lora_source"] = asTrained ? "trained" : "extracted",
        };
        LoraFile.Save(network, Path.Combine(temp, ConceptExporter.LoraFileName(context.Trigger)), LoraFileFormat.Kohya, metadata, options.WeightsDType);
        return new LoraExportReport(layers, asTrained ? [] : extraction!.UnchangedLayers, notCarried) { Trained = asTrained };
    }

    private static LoraExtraction Extract(ExportContext context, UNet2DConditionModel baseUNet)
    {
        var options = context.Options;
        int total = LoraTargets.Select(baseUNet, options.LoraModules).Count;
        int done = 0;
        context.Report(Stage, 0, total);
        var extractionOptions = new LoraExtractionOptions(Rank: options.LoraRank ?? int.MaxValue, UNetModules: options.LoraModules,
            TextEncoderModules: LoraTextEncoderModules.None);
        var layerProgress = new InlineProgress<LoraLayerExtraction>(_ => context.Report(Stage, ++done, total));
        var extraction = LoraExtractor.Extract(baseUNet, context.Components.UNet, null, null, extractionOptions, layerProgress, context.CancellationToken);
        if (extraction.Network.Adapters.Count == 0)
        {
            extraction.Dispose();
            throw new InvalidOperationException("The fine-tuned U-Net does not differ from the base model in any selected layer: there is no LoRA to export (export the embedding alone).");
        }
        context.Report(Stage, total, total);
        return extraction;
    }

    /// <summary>A trained adapter written as it is: nothing to approximate.</summary>
    private static LoraLayerExtraction Exact(LoraAdapter adapter)
    {
        using var delta = adapter.WeightDelta(1.0);
        return new LoraLayerExtraction(adapter.Component, adapter.ModulePath, adapter.Rank, delta.norm().item<float>(), 0, 0, 0, 0) { Kind = adapter.Kind };
    }

    /// <summary>Every tensor of the tuned U-Net that differs from the base and is not the weight of a covered layer.</summary>
    private static IReadOnlyDictionary<string, double> NotCarried(torch.nn.Module baseUNet, torch.nn.Module tunedUNet, HashSet<string> covered)
    {
        var baseState = baseUNet.state_dict();
        var changes = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (name, tuned) in tunedUNet.state_dict())
        {
            if (covered.Contains(name) || !baseState.TryGetValue(name, out var original)) continue;
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var a = original.detach().to_type(torch.float64).cpu();
            var b = tuned.detach().to_type(torch.float64).cpu();
            if (a.eq(b).all().item<bool>()) continue;
            double delta = b.sub(a).norm().item<double>();
            double reference = a.norm().item<double>();
            changes.Add(name, reference == 0 ? delta : delta / reference);
        }
        return changes;
    }

    /// <summary>Reports on the calling thread (the extraction runs on the export's thread).</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
