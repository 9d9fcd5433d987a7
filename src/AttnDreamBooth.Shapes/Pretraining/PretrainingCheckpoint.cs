using AttnDreamBooth.IO;
using AttnDreamBooth.Training;
using TorchSharp;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>The scalar state of a pretraining checkpoint (<c>checkpoint.json</c>).</summary>
public sealed record PretrainingCheckpointState
{
    /// <summary>Format version.</summary>
    public int FormatVersion { get; init; } = 1;

    /// <summary><see cref="PretrainingRecipe.Fingerprint"/> of the run; a checkpoint only resumes the same recipe.</summary>
    public string RecipeFingerprint { get; init; } = "";

    /// <summary>The recipe itself, so a checkpoint can be exported without knowing it.</summary>
    public string RecipeJson { get; init; } = "";

    /// <summary>The phase in progress; in <see cref="PretrainingPhase.UNet"/> the VAE phase is complete.</summary>
    public PretrainingPhase Phase { get; init; }

    /// <summary>Completed steps of <see cref="Phase"/>.</summary>
    public int StepInPhase { get; init; }

    /// <summary>The latent scaling factor measured at the end of the VAE phase (0 before).</summary>
    public double ScalingFactor { get; init; }

    /// <summary>Loss of every completed VAE step.</summary>
    public IReadOnlyList<double> VaeLosses { get; init; } = [];

    /// <summary>Training objective (min-SNR-weighted epsilon MSE) of every completed U-Net step.</summary>
    public IReadOnlyList<double> UNetLosses { get; init; } = [];

    /// <summary>Unweighted epsilon MSE of every completed U-Net step.</summary>
    public IReadOnlyList<double> UNetMse { get; init; } = [];

    /// <summary>Wall-clock seconds spent in each phase so far, over every session.</summary>
    public double VaeSeconds { get; init; }

    /// <summary>Wall-clock seconds spent in the U-Net phase so far, over every session.</summary>
    public double UNetSeconds { get; init; }

    /// <summary>When the checkpoint was written (informational).</summary>
    public DateTimeOffset WrittenAt { get; init; }

    /// <summary>Whether the whole recipe has been trained.</summary>
    public bool IsComplete(PretrainingRecipe recipe) => Phase == PretrainingPhase.UNet && StepInPhase >= recipe.UNetSteps;
}

/// <summary>
/// Pretraining checkpoints: folders <c>checkpoint-&lt;phase&gt;-&lt;step&gt;</c> holding <c>checkpoint.json</c> and
/// <c>state.safetensors</c> (float32 weights of every network, AdamW moments, every random stream), each written under a
/// temporary name and renamed into place, so a kill at any moment leaves the previous checkpoint intact.
/// </summary>
public static class PretrainingCheckpoint
{
    /// <summary>Name of the tensor file.</summary>
    public const string StateFile = CheckpointFiles.StateFile;

    /// <summary>Name of the scalar-state file.</summary>
    public const string JsonFile = CheckpointFiles.JsonFile;

    /// <summary>Writes a checkpoint under <paramref name="root"/> and keeps only the newest <paramref name="keep"/>; returns its folder.</summary>
    public static string Write(string root, PretrainingCheckpointState state, IReadOnlyDictionary<string, torch.Tensor> tensors, int keep = 2)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(tensors);
        return CheckpointFiles.Write(root, $"checkpoint-{(int)state.Phase}-{state.StepInPhase:D7}", state with { WrittenAt = DateTimeOffset.UtcNow },
            tensors, "attndreambooth-shapes-pretraining", keep, _ => true);
    }

    /// <summary>Complete checkpoint folders under <paramref name="root"/>, newest first.</summary>
    public static IReadOnlyList<string> List(string root) => CheckpointFiles.List(root);

    /// <summary>The newest complete checkpoint under <paramref name="root"/>, or null.</summary>
    public static string? Latest(string root) => List(root).FirstOrDefault();

    /// <summary>Reads the scalar state of a checkpoint folder (or of the newest checkpoint under a root).</summary>
    /// <exception cref="ModelConfigException">There is no complete checkpoint, or its JSON is invalid.</exception>
    public static (string Folder, PretrainingCheckpointState State) ReadState(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string folder = File.Exists(Path.Combine(path, JsonFile)) ? path : Latest(path) ?? throw new ModelConfigException(path, null, "holds no complete pretraining checkpoint");
        var state = CheckpointFiles.ReadDescription<PretrainingCheckpointState>(folder, "pretraining checkpoint");
        CheckpointFiles.RequireFormatVersion(folder, state.FormatVersion);
        return (folder, state);
    }

    /// <summary>Reads every tensor of a checkpoint folder (CPU, as stored).</summary>
    public static Dictionary<string, torch.Tensor> ReadTensors(string folder) => CheckpointFiles.ReadTensors(folder);
}
