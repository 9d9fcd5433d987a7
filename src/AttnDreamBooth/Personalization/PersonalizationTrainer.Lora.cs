using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using AttnDreamBooth.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Personalization;

// LoRA stages: the adapters' life across stages (created, trained, merged) and in checkpoints.
internal sealed partial class PersonalizationTrainer
{
    /// <summary>A LoRA stage: every U-Net weight frozen, the adapters on the stage's layers trained (by checkpoint name
    /// <c>lora.&lt;kohya name&gt;.lora_down.weight</c> / <c>lora_up.weight</c>).</summary>
    private List<(string Name, Parameter Parameter)> SelectAdapters(TrainingStage stage)
    {
        StageParameters.FreezeAll(_components.UNet.named_parameters().Select(p => (p.name, p.parameter)));
        var modules = StagePlan.LoraModulesOf(stage, _plan[stage]);
        return FreezeAdapters(path => LoraTargets.Matches(path, modules));
    }

    private List<(string Name, Parameter Parameter)> FreezeAdapters(Func<string, bool> trains)
    {
        var trained = new List<(string, Parameter)>();
        foreach (var adapter in _lora!.Adapters)
        {
            bool train = trains(adapter.ModulePath);
            foreach (var (part, parameter) in new[] { ("lora_down.weight", adapter.DownWeight), ("lora_up.weight", adapter.UpWeight) })
            {
                parameter.requires_grad = train;
                if (!train) parameter.grad = null;
                else trained.Add(($"{LoraStatePrefix}{adapter.KohyaName}.{part}", parameter));
            }
        }
        return trained;
    }

    private const string LoraStatePrefix = "lora.";

    private const string LoraDropoutState = "lora_rng.dropout";

    /// <summary>The first and last index of the consecutive LoRA stages around <paramref name="index"/>: they train one
    /// network (a stage continues the previous one's adapters).</summary>
    private (int First, int Last) LoraRun(IReadOnlyList<TrainingStage> stages, int index)
    {
        int first = index, last = index;
        while (first > 0 && _plan[stages[first - 1]].Lora is not null) first--;
        while (last + 1 < stages.Count && _plan[stages[last + 1]].Lora is not null) last++;
        return (first, last);
    }

    /// <summary>The adapters of the LoRA stages around <paramref name="index"/>, on the union of their layers, seeded from the
    /// run's seed and hooked onto the U-Net (a fresh adapter changes nothing: its up projection is zero).</summary>
    private void CreateLora(IReadOnlyList<TrainingStage> stages, int index)
    {
        var (first, last) = LoraRun(stages, index);
        var modules = LoraUNetModules.None;
        for (int i = first; i <= last; i++) modules |= StagePlan.LoraModulesOf(stages[i], _plan[stages[i]]);
        var options = _plan[stages[first]].Lora!;
        ulong seed = unchecked((ulong)_options.Seed * 0xD1B54A32D192ED03UL + (ulong)stages[first] * 0x8CB92BA72F3D8DD7UL) >> 1;
        var network = LoraNetwork.Create(_components.UNet, modules, null, LoraTextEncoderModules.None, options);
        try
        {
            network.ResetParameters(seed);
            if (options.Dropout > 0)
            {
                _loraDropout = new Generator(seed ^ 0x5DEECE66DUL);
                network.DropoutGenerator = _loraDropout;
            }
            foreach (var p in network.parameters()) p.requires_grad = false;
            network.Install();
        }
        catch
        {
            network.Dispose();
            throw;
        }
        _lora = network;
        PipelineLog.LoraCreated(_logger, network.Count, network.ParameterCount, options.Rank, modules.ToString());
    }

    /// <summary>Writes the adapters into the U-Net's weights and takes their hooks off. With <paramref name="keep"/> the
    /// network becomes <see cref="TrainedLora"/>, otherwise it is released (the weights hold its update).</summary>
    private void MergeLora(bool keep)
    {
        var network = _lora!;
        _lora = null;
        foreach (var p in network.parameters())
        {
            p.requires_grad = false;
            p.grad = null;
        }
        network.eval();
        network.DropoutGenerator = null;
        network.Merge();
        network.Remove();
        if (keep) TrainedLora = network;
        else network.Dispose();
    }

    private void RestoreLora(IReadOnlyDictionary<string, Tensor> tensors, string checkpoint)
    {
        using var _ = no_grad();
        foreach (var (name, p) in _lora!.named_parameters())
        {
            if (!tensors.TryGetValue(LoraStatePrefix + name, out var value) || !value.shape.SequenceEqual(p.shape))
                throw new InvalidOperationException($"Checkpoint '{checkpoint}' lacks LoRA tensor '{name}' or holds it in another shape; it was written by another plan.");
            p.copy_(value);
        }
        if (_loraDropout is not null)
        {
            if (!tensors.TryGetValue(LoraDropoutState, out var state)) throw new InvalidOperationException($"Checkpoint '{checkpoint}' lacks the LoRA dropout generator's state.");
            _loraDropout.set_state(state);
        }
    }
}
