using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Training;

/// <summary>The scalar state of a checkpoint (<c>checkpoint.json</c>).</summary>
internal sealed record TrainingCheckpointState
{
    /// <summary>Format version of the checkpoint folder.</summary>
    public int FormatVersion { get; init; } = 1;

    /// <summary>The stage being trained (1–3); when <see cref="StepInStage"/> equals that stage's steps it is complete.</summary>
    public int Stage { get; init; }

    /// <summary>Completed optimizer steps in <see cref="Stage"/>.</summary>
    public int StepInStage { get; init; }

    /// <summary>Completed optimizer steps over all stages.</summary>
    public int GlobalStep { get; init; }

    /// <summary>The run's seed.</summary>
    public long Seed { get; init; }

    /// <summary>A fingerprint of the concept, plan and base model; a checkpoint only resumes the same run.</summary>
    public string RunFingerprint { get; init; } = "";

    /// <summary>Identifier token.</summary>
    public string Token { get; init; } = "";

    /// <summary>Category word.</summary>
    public string Category { get; init; } = "";

    /// <summary>Whether the U-Net tensors in the checkpoint are complete (a stage ≥ 2 has changed them).</summary>
    public bool HasUNet { get; init; }

    /// <summary>Whether the checkpoint holds LoRA adapters being trained (<c>lora.*</c> tensors; absent in checkpoints of
    /// runs without LoRA).</summary>
    public bool HasLora { get; init; }

    /// <summary>Loss history (one entry per completed step) for plots after a resume.</summary>
    public IReadOnlyList<double> LossHistory { get; init; } = [];

    /// <summary>When the checkpoint was written (UTC, informational).</summary>
    public DateTimeOffset WrittenAt { get; init; }
}

/// <summary>
/// A resumable training checkpoint: a folder with <c>checkpoint.json</c> and <c>state.safetensors</c> (concept
/// embedding, changed U-Net tensors, optimizer moments, every random stream). Folders are written under a temporary
/// name and renamed into place, so a crash never leaves a half-written checkpoint that looks complete.
/// </summary>
internal static class TrainingCheckpoint
{
    /// <summary>Name of the state file.</summary>
    public const string StateFile = CheckpointFiles.StateFile;

    /// <summary>Name of the scalar-state file.</summary>
    public const string JsonFile = CheckpointFiles.JsonFile;

    /// <summary>Writes a checkpoint folder <c>checkpoint-&lt;global step&gt;</c> under <paramref name="root"/> atomically and
    /// deletes older ones of the same run beyond <paramref name="keep"/>; returns its path.</summary>
    public static string Write(string root, TrainingCheckpointState state, IReadOnlyDictionary<string, torch.Tensor> tensors, int keep = 2) =>
        // Only this run's checkpoints are pruned; another run's in the same folder are never ours to delete.
        CheckpointFiles.Write(root, $"checkpoint-{state.GlobalStep:D7}", state with { WrittenAt = DateTimeOffset.UtcNow }, tensors,
            "attndreambooth-checkpoint", keep, c => SameRun(c, state.RunFingerprint));

    private static bool SameRun(string checkpoint, string fingerprint)
    {
        try { return CheckpointFolder.ReadState(checkpoint).RunFingerprint == fingerprint; }
        catch (ModelConfigException) { return false; }
    }

    /// <summary>Complete checkpoint folders under <paramref name="root"/>, newest first.</summary>
    public static IReadOnlyList<string> List(string root) => CheckpointFiles.List(root);

    /// <summary>The newest complete checkpoint under <paramref name="root"/>, or null.</summary>
    public static string? Latest(string root) => List(root).FirstOrDefault();

    /// <summary>Reads a checkpoint folder (or a root holding checkpoint folders: its newest).</summary>
    /// <exception cref="ModelConfigException">No complete checkpoint there, or its JSON is invalid.</exception>
    public static (TrainingCheckpointState State, Dictionary<string, torch.Tensor> Tensors) Read(string path)
    {
        // In a folder of checkpoints a truncated or corrupt newest one is passed over for the previous valid one.
        string folder = File.Exists(Path.Combine(path, JsonFile)) ? path : CheckpointFolder.LatestValid(path).Checkpoint
            ?? throw new ModelConfigException(path, null, "holds no complete, valid training checkpoint");
        var state = CheckpointFolder.ReadState(folder);
        CheckpointFiles.RequireFormatVersion(folder, state.FormatVersion);
        return (state, CheckpointFiles.ReadTensors(folder));
    }
}
