using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Text;

/// <summary>
/// Writes a textual-inversion embedding the way AUTOMATIC1111 and ComfyUI load it for SD 1.x and 2.x: one safetensors
/// file whose single tensor, <c>emb_params</c> [vectors, width] (float32), holds the rows, and whose file name is the
/// trigger word (<c>&lt;trigger&gt;.safetensors</c>; the tools never read a token from inside the file). Both families
/// use the same key: A1111 accepts any single tensor and skips embeddings whose width is not its text encoder's, and
/// ComfyUI falls back to the first tensor when its model-specific key (<c>clip_l</c>, <c>clip_h</c>) is absent. The
/// <c>clip_l</c> / <c>clip_g</c> pair is SDXL's layout and is not written. <see cref="LearnedEmbeddings.Read(string)"/>
/// reads these files back (the token is the file name).
/// </summary>
internal static class A1111EmbeddingFile
{
    /// <summary>The tensor name (kohya's and A1111's safetensors embeddings).</summary>
    public const string ParameterKey = "emb_params";

    // Characters Windows forbids in file names: A1111 and ComfyUI mostly run there, and the trigger is the file name.
    private static readonly char[] NonPortable = ['<', '>', ':', '"', '/', '\\', '|', '?', '*'];

    /// <summary>The file name that makes <paramref name="triggerWord"/> the trigger: <c>&lt;trigger&gt;.safetensors</c>.</summary>
    /// <exception cref="ArgumentException">The word cannot be a portable file name (path separators, characters Windows
    /// forbids, control characters, a leading dot or trailing space/dot).</exception>
    public static string FileName(string triggerWord)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(triggerWord);
        if (triggerWord.IndexOfAny(NonPortable) >= 0 || triggerWord.Any(char.IsControl) || triggerWord.StartsWith('.')
            || triggerWord.EndsWith('.') || triggerWord.EndsWith(' ') || triggerWord.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
        {
            throw new ArgumentException(
                $"The trigger word '{triggerWord}' cannot be a file name on every system (A1111 and ComfyUI take the trigger word from the " +
                $"embedding's file name; {string.Join(' ', NonPortable)}, control characters, a leading dot and a trailing dot or space are not allowed). " +
                "Choose another trigger word for the export.", nameof(triggerWord));
        }
        return triggerWord + ".safetensors";
    }

    /// <summary>Writes <paramref name="rows"/> ([vectors, width] or [width]) as <c>&lt;folder&gt;/&lt;trigger&gt;.safetensors</c>,
    /// atomically, and returns the path.</summary>
    /// <exception cref="ArgumentException">The trigger word is not a portable file name, or the rows are not [n, width].</exception>
    public static string Write(string folder, string triggerWord, torch.Tensor rows)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(rows);
        string path = Path.Combine(folder, FileName(triggerWord));
        if (rows.dim() is not (1 or 2) || rows.shape[^1] <= 0 || (rows.dim() == 2 && rows.shape[0] <= 0))
            throw new ArgumentException($"An embedding is [vectors, width] or [width], got [{string.Join(", ", rows.shape)}].", nameof(rows));
        using var scope = torch.NewDisposeScope();
        var value = (rows.dim() == 1 ? rows.unsqueeze(0) : rows).detach().to_type(torch.float32).cpu().contiguous();
        SafetensorsWriter.Write(path, new Dictionary<string, torch.Tensor> { [ParameterKey] = value }, new Dictionary<string, string> { ["format"] = "pt" });
        return path;
    }
}
