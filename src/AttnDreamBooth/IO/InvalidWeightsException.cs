namespace AttnDreamBooth.IO;

/// <summary>
/// A weights file cannot be used: it is a Python pickle (<c>.bin</c>, <c>.ckpt</c>, <c>.pt</c>, <c>.pth</c>; refused
/// because unpickling can execute arbitrary code, so convert it to safetensors with a trusted tool first), a malformed or
/// inconsistent safetensors file, a single-file checkpoint that does not match the key layout its configuration implies
/// (unknown keys, missing blocks, wrong shapes, ambiguous family), or it holds NaN or infinite values (which load without
/// complaint and make every image black; see <see cref="StateDictLoadOptions.CheckFinite"/>). Names the file and, where
/// it applies, the tensor.
/// </summary>
public sealed class InvalidWeightsException : AttnDreamBoothException
{
    /// <summary>Creates the exception for a malformed safetensors file.</summary>
    /// <param name="filePath">The file that was being read.</param>
    /// <param name="tensorName">The tensor entry at fault, or null when the problem is with the file as a whole.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="inner">The underlying failure, if any.</param>
    public InvalidWeightsException(string filePath, string? tensorName, string problem, Exception? inner = null)
        : this(tensorName is null ? $"Invalid safetensors file '{filePath}': {problem}" : $"Invalid safetensors file '{filePath}', tensor '{tensorName}': {problem}",
               filePath, tensorName, problem, [], inner)
    {
    }

    private InvalidWeightsException(string message, string filePath, string? tensorName, string problem, IReadOnlyList<string> tensorNames, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
        Problem = problem;
        TensorNames = tensorNames;
    }

    /// <summary><paramref name="filePath"/> is a pickle-based checkpoint, which is never read.</summary>
    internal static InvalidWeightsException Pickle(string filePath) =>
        new($"'{filePath}' is a Python pickle checkpoint. Pickles can execute arbitrary code when loaded, so AttnDreamBooth " +
            "never reads them. Convert the model to .safetensors (for example with diffusers' save_pretrained(safe_serialization=True)) " +
            "or download the safetensors variant of the model.",
            filePath, null, "a Python pickle checkpoint", []);

    /// <summary>A single-file checkpoint (or one of its keys, <paramref name="subject"/>) does not fit the layout its
    /// configuration implies.</summary>
    internal static InvalidWeightsException SingleFile(string subject, string problem) =>
        new($"{subject}: {problem}", subject, null, problem, []);

    /// <summary>The weights in <paramref name="source"/> (the file or files, as text) hold NaN or infinite values in
    /// <paramref name="tensorNames"/>.</summary>
    internal static InvalidWeightsException NonFinite(string source, IReadOnlyList<string> tensorNames) =>
        new($"{source}: {tensorNames.Count} tensor(s) hold NaN or infinite values: " +
            string.Join(", ", tensorNames.Take(10).Select(n => $"'{n}'")) + (tensorNames.Count > 10 ? $", … and {tensorNames.Count - 10} more" : "") +
            ". The file is corrupt or came from a diverged training run.",
            source, null, "NaN or infinite values", tensorNames);

    /// <summary>The file at fault: for NaN or infinite values the weight file(s) as text, for a single-file checkpoint's
    /// layout the file or the key the problem is about.</summary>
    public string FilePath { get; }

    /// <summary>The tensor entry at fault, or null when the problem is with the file as a whole.</summary>
    public string? TensorName { get; }

    /// <summary>What is wrong, without the file and tensor names.</summary>
    public string Problem { get; }

    /// <summary>Every tensor that holds a NaN or infinite value; empty when that is not the problem.</summary>
    public IReadOnlyList<string> TensorNames { get; }
}
