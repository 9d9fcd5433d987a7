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
public static class CheckpointFiles
{
    /// <summary>Name of the tensor file.</summary>
    public const string StateFile = "state.safetensors";

    /// <summary>Name of the description file.</summary>
    public const string JsonFile = "checkpoint.json";

    private const string FolderPrefix = "checkpoint-";

    // A description holds scalars and loss curves; anything larger is not one.
    private const long MaxDescriptionBytes = 64L << 20;

    /// <summary>Writes <paramref name="folderName"/> under <paramref name="root"/> atomically, then deletes the complete
    /// checkpoints that <paramref name="prunable"/> accepts beyond the newest <paramref name="keep"/>; returns the folder.</summary>
    /// <param name="root">The run's checkpoint folder (created if missing).</param>
    /// <param name="folderName">The checkpoint's own folder name: <c>checkpoint-</c> followed by a suffix that sorts
    /// after every earlier checkpoint's (e.g. a zero-padded step number).</param>
    /// <param name="state">The description, written as <c>checkpoint.json</c> in the spelling of <see cref="JsonFiles"/>.</param>
    /// <param name="tensors">The tensors, written as <c>state.safetensors</c>.</param>
    /// <param name="format">The safetensors <c>format</c> metadata value (<c>pt</c> for PyTorch tensors).</param>
    /// <param name="keep">How many of the newest prunable checkpoints to keep (at least 1).</param>
    /// <param name="prunable">Which complete checkpoint folders may be deleted (by path).</param>
    /// <exception cref="ArgumentException"><paramref name="folderName"/> does not start with <c>checkpoint-</c> or is not a
    /// single folder name.</exception>
    public static string Write<TState>(string root, string folderName, TState state, IReadOnlyDictionary<string, torch.Tensor> tensors,
        string format, int keep, Func<string, bool> prunable)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ArgumentNullException.ThrowIfNull(folderName);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(format);
        ArgumentNullException.ThrowIfNull(prunable);
        // List finds only "checkpoint-*" folders directly under the root: any other name would be written and never found.
        if (!folderName.StartsWith(FolderPrefix, StringComparison.Ordinal) || folderName.Length == FolderPrefix.Length
            || folderName.IndexOfAny(['/', '\\']) >= 0 || folderName.Contains("..", StringComparison.Ordinal))
            throw new ArgumentException($"A checkpoint folder name is '{FolderPrefix}' plus a suffix, one path component; got '{folderName}'.", nameof(folderName));
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
            : Directory.EnumerateDirectories(root, FolderPrefix + "*")
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
