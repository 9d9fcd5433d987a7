using System.Text.Json;
using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Training;

/// <summary>
/// The on-disk form every checkpoint of the library shares: a folder <c>checkpoint-…</c> holding a description
/// (<c>checkpoint.json</c>) and the tensors (<c>state.safetensors</c>), written under a temporary name and renamed into
/// place, so a kill at any moment leaves the previous checkpoint intact and never a half-written one that looks complete.
/// Folder names sort oldest to newest, so "newest" is the last name in ordinal order.
/// </summary>
internal static class CheckpointFiles
{
    /// <summary>Name of the tensor file.</summary>
    public const string StateFile = "state.safetensors";

    /// <summary>Name of the description file.</summary>
    public const string JsonFile = "checkpoint.json";

    // A description holds scalars and loss curves; anything larger is not one.
    private const long MaxDescriptionBytes = 64L << 20;

    /// <summary>Writes <paramref name="folderName"/> under <paramref name="root"/> atomically, then deletes the complete
    /// checkpoints that <paramref name="prunable"/> accepts beyond the newest <paramref name="keep"/>; returns the folder.</summary>
    public static string Write<TState>(string root, string folderName, TState state, IReadOnlyDictionary<string, torch.Tensor> tensors,
        string format, int keep, Func<string, bool> prunable)
    {
        Directory.CreateDirectory(root);
        string final = Path.Combine(root, folderName);
        AtomicFile.WriteDirectory(final, temp =>
        {
            SafetensorsWriter.Write(Path.Combine(temp, StateFile), tensors, new Dictionary<string, string> { ["format"] = format });
            AtomicFile.WriteAllText(Path.Combine(temp, JsonFile), JsonFiles.Serialize(state));
        });
        foreach (string stale in List(root).Where(prunable).Skip(Math.Max(1, keep)))
        {
            try { Directory.Delete(stale, recursive: true); } catch (IOException) { }
        }
        return final;
    }

    /// <summary>Complete checkpoint folders under <paramref name="root"/> (both files present), newest first.</summary>
    public static IReadOnlyList<string> List(string root) =>
        !Directory.Exists(root)
            ? []
            : Directory.EnumerateDirectories(root, "checkpoint-*")
                .Where(d => File.Exists(Path.Combine(d, JsonFile)) && File.Exists(Path.Combine(d, StateFile)))
                .OrderByDescending(d => Path.GetFileName(d), StringComparer.Ordinal)
                .ToArray();

    /// <summary>Reads the description of <paramref name="checkpoint"/> (a checkpoint folder).</summary>
    /// <exception cref="ModelConfigException">Missing, unreadable, too large or not JSON of <typeparamref name="TState"/>;
    /// <paramref name="what"/> names the kind in the message.</exception>
    public static TState ReadDescription<TState>(string checkpoint, string what) where TState : class
    {
        string json = Path.Combine(checkpoint, JsonFile);
        TState state;
        try
        {
            RegularFile.Require(json);
            if (new FileInfo(json).Length > MaxDescriptionBytes) throw new ModelConfigException(json, null, $"is larger than 64 MiB; not a {what}");
            state = JsonFiles.Deserialize<TState>(File.ReadAllText(json)) ?? throw new ModelConfigException(json, null, "is empty");
        }
        catch (JsonException e)
        {
            throw new ModelConfigException(json, null, $"is not a valid {what} ({e.Message})", e);
        }
        catch (IOException e)
        {
            throw new ModelConfigException(json, null, $"cannot be read ({e.Message})", e);
        }
        return state;
    }

    /// <summary>Refuses a description of another format version than 1, the only one written so far.</summary>
    /// <exception cref="ModelConfigException">The version is not 1.</exception>
    public static void RequireFormatVersion(string checkpoint, int version)
    {
        if (version != 1)
            throw new ModelConfigException(Path.Combine(checkpoint, JsonFile), "format_version", $"version {version} is not supported (expected 1)");
    }

    /// <summary>Reads every tensor of a checkpoint folder (CPU, as stored).</summary>
    public static Dictionary<string, torch.Tensor> ReadTensors(string checkpoint)
    {
        using var file = SafetensorsFile.Open(Path.Combine(checkpoint, StateFile));
        return file.ReadAll();
    }
}
