using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Lora;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using AttnDreamBooth.Training;
using Microsoft.Extensions.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Personalization;

// Checkpoints of a run: the folder checks before any work, writing, resuming and the run fingerprint.
internal sealed partial class PersonalizationTrainer
{
    /// <summary>Where a run starts: the beginning, or a checkpoint's stage and step with its tensors.</summary>
    private sealed record ResumePoint(int StageIndex, int StepInStage, int GlobalStep, string? Checkpoint, Dictionary<string, Tensor>? Tensors)
    {
        public static ResumePoint Start { get; } = new(0, 0, 0, null, null);
    }

    /// <summary>Restores the weights, random streams, loss history and adapters of a checkpoint of this run.</summary>
    private ResumePoint Resume(string resumeFrom, string fingerprint, RandomStreams streams, RandomStreams? priorStreams)
    {
        var stages = _plan.EnabledStages;
        var (state, tensors) = TrainingCheckpoint.Read(resumeFrom);
        if (state.RunFingerprint != fingerprint)
            throw new InvalidOperationException($"Checkpoint '{resumeFrom}' belongs to a different run (concept, images, plan, base model or seed differ).");
        RestoreParameters(tensors, state.HasUNet);
        streams.LoadState(tensors);
        priorStreams?.LoadState(tensors.Where(p => p.Key.StartsWith(PriorStatePrefix, StringComparison.Ordinal))
            .ToDictionary(p => p.Key[PriorStatePrefix.Length..], p => p.Value));
        _lossHistory.AddRange(state.LossHistory);
        int stageIndex = stages.ToList().IndexOf((TrainingStage)state.Stage);
        if (stageIndex < 0) throw new InvalidOperationException($"Checkpoint '{resumeFrom}' is at stage {state.Stage}, which the plan does not run.");
        if (state.HasLora)
        {
            if (_plan[stages[stageIndex]].Lora is null)
                throw new InvalidOperationException($"Checkpoint '{resumeFrom}' holds LoRA adapters, but stage {state.Stage} of the plan does not train any.");
            CreateLora(stages, stageIndex);
            RestoreLora(tensors, resumeFrom);
        }
        _lastCheckpoint = resumeFrom;
        _lastCheckpointGlobalStep = state.GlobalStep;
        PipelineLog.Resuming(_logger, resumeFrom, state.Stage, state.StepInStage);
        return new ResumePoint(stageIndex, state.StepInStage, state.GlobalStep, resumeFrom, tensors);
    }

    private static void RestoreOptimizer(AdamWOptimizer optimizer, ResumePoint resume, int stepInStage)
    {
        var optimizerState = resume.Tensors!.Where(p => p.Key.StartsWith("optim.", StringComparison.Ordinal)).ToDictionary(p => p.Key["optim.".Length..], p => p.Value);
        try
        {
            optimizer.LoadState(optimizerState, stepInStage);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"Checkpoint '{resume.Checkpoint}' cannot be resumed: {e.Message}", e);
        }
    }

    /// <summary>Before any work: restores or removes what a killed run left half-written, refuses another run's folder
    /// (unless allowed), and checks writability and free space for two checkpoints.</summary>
    private void PrepareCheckpointFolder(string root, string fingerprint)
    {
        OutputFolders.CleanStaleTemporaries(root);
        if (!_options.OverwriteOtherRuns)
        {
            var others = CheckpointFolder.OtherRuns(root, fingerprint);
            if (others.Count > 0)
                throw new OutputFolderException(Path.GetFullPath(root), $"holds {others.Count} checkpoint(s) of another run (e.g. '{Path.GetFileName(others[0])}'); "
                    + "choose another checkpoint folder, or allow it explicitly (TrainingOptions.OverwriteOtherRuns, CLI --force)");
        }
        bool unet = _plan.EnabledStages.Any(s => s != TrainingStage.Embedding && _plan[s].Lora is null);
        long adapters = _plan.EnabledStages.Where(s => _plan[s].Lora is not null)
            .Sum(s => LoraTargets.ParameterCount(_components.UNet, StagePlan.LoraModulesOf(s, _plan[s]), _plan[s].Lora!.Rank));
        // A checkpoint holds the U-Net (or the adapters) and two AdamW moments per trained parameter (float32); one is
        // written beside the kept ones.
        long bytes = (_concept.Weight.NumberOfElements * 3 + (unet ? _components.UNet.parameters().Sum(p => p.NumberOfElements) * 3 : 0) + adapters * 3) * 4
            + (1 << 20);
        OutputFolders.RequireWritable(root, 2 * bytes, "checkpoints");
    }

    private TrainingCancelledException Cancelled(TrainingStage stage, int step, int globalStep, string fingerprint, AdamWOptimizer optimizer,
        RandomStreams streams, CancellationToken ct)
    {
        string? checkpoint = _lastCheckpoint;
        if (_options.CheckpointDirectory is not null && _lastCheckpointGlobalStep != globalStep && step > 0)
            checkpoint = WriteCheckpoint(stage, step, globalStep, fingerprint, optimizer, streams);
        return new TrainingCancelledException((int)stage, step, globalStep, checkpoint, ct);
    }

    private string WriteCheckpoint(TrainingStage stage, int step, int globalStep, string fingerprint, AdamWOptimizer optimizer, RandomStreams streams)
    {
        // The U-Net's weights differ from the base once a full fine-tuning stage has run (or is running); LoRA stages leave
        // them alone and the checkpoint holds the adapters instead.
        var upToNow = _plan.EnabledStages.TakeWhile(s => s != stage).Append(stage);
        // Every handle made here (on live weights and moments, and the detach() in between) is released when the file is
        // written: left to the garbage collector, they would keep a finished stage's optimizer moments (1.6–6.5 GiB for
        // SD 2.1) alive after the optimizer is disposed.
        using var scope = NewDisposeScope();
        bool hasUNet = upToNow.Any(s => s != TrainingStage.Embedding && _plan[s].Lora is null);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal) { [EmbeddingStateName] = _concept.Weight.detach().cpu() };
        if (hasUNet)
        {
            foreach (var (name, p) in _components.UNet.named_parameters()) tensors["unet." + name] = p.detach().cpu();
        }
        if (_lora is not null)
        {
            foreach (var (name, p) in _lora.named_parameters()) tensors[LoraStatePrefix + name] = p.detach().cpu();
            if (_loraDropout is not null) tensors[LoraDropoutState] = _loraDropout.get_state().clone();
        }
        foreach (var (name, t) in optimizer.StateViews()) tensors["optim." + name] = t;
        foreach (var (name, t) in streams.SaveState()) tensors[name] = t;
        if (_priorStreams is not null)
        {
            foreach (var (name, t) in _priorStreams.SaveState()) tensors[PriorStatePrefix + name] = t;
        }
        var state = new TrainingCheckpointState
        {
            Stage = (int)stage,
            StepInStage = step,
            GlobalStep = globalStep,
            Seed = _options.Seed,
            RunFingerprint = fingerprint,
            Token = _concept.Tokens[0],
            Category = Category,
            HasUNet = hasUNet,
            HasLora = _lora is not null,
            LossHistory = _lossHistory.ToArray(),
        };
        _lastCheckpoint = TrainingCheckpoint.Write(_options.CheckpointDirectory!, state, tensors, _options.KeepCheckpoints);
        _lastCheckpointGlobalStep = globalStep;
        PipelineLog.CheckpointWritten(_logger, _lastCheckpoint);
        return _lastCheckpoint;
    }

    private void RestoreParameters(IReadOnlyDictionary<string, Tensor> tensors, bool hasUNet)
    {
        using var _ = no_grad();
        if (!tensors.TryGetValue(EmbeddingStateName, out var embedding) || !embedding.shape.SequenceEqual(_concept.Weight.shape))
            throw new InvalidOperationException("The checkpoint's concept embedding is missing or has the wrong shape.");
        _concept.Weight.copy_(embedding);
        if (!hasUNet) return;
        foreach (var (name, p) in _components.UNet.named_parameters())
        {
            if (!tensors.TryGetValue("unet." + name, out var value)) throw new InvalidOperationException($"The checkpoint lacks U-Net tensor '{name}'.");
            p.copy_(value);
        }
    }

    /// <summary>A fingerprint of everything that defines a run, so a checkpoint never resumes a different one.</summary>
    internal static string Fingerprint(string baseModel, string token, string category, string prompt, IEnumerable<byte[]> imageHashes, StagePlan plan, TrainingOptions options)
    {
        using var sha = SHA256.Create();
        var text = new StringBuilder();
        text.Append(Path.GetFileName(Path.GetFullPath(baseModel).TrimEnd('/'))).Append('\n').Append(token).Append('\n').Append(category).Append('\n').Append(prompt).Append('\n');
        text.Append(JsonSerializer.Serialize(plan)).Append('\n').Append(options.Seed).Append('\n').Append(DataJson(options.Data));
        foreach (var h in imageHashes) text.Append('\n').Append(Convert.ToHexString(h));
        return Convert.ToHexString(sha.ComputeHash(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>The data options as the fingerprint has always spelled them. The image size limits are not data options
    /// (they refuse files, they never change what is trained: <see cref="ResourceLimits"/>), but checkpoints already on
    /// disk hash them with their defaults right after <c>MinimumSide</c>; they stay there, as constants, so those
    /// checkpoints keep their run identity whatever limits a resumed run uses.</summary>
    private static string DataJson(TrainingDataOptions data)
    {
        var node = JsonSerializer.SerializeToNode(data)!.AsObject();
        var images = new System.Text.Json.Nodes.JsonObject();
        foreach (var (key, value) in node["Images"]!.AsObject().ToList())
        {
            images[key] = value?.DeepClone();
            if (key == nameof(ConceptImageOptions.MinimumSide))
            {
                images["MaxPixels"] = 89_478_485L;
                images["MaxFileBytes"] = 256L << 20;
            }
        }
        node["Images"] = images;
        return node.ToJsonString();
    }
}
