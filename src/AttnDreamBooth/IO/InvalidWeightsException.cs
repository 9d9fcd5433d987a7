namespace AttnDreamBooth.IO;

/// <summary>
/// A weights file cannot be used: it is a Python pickle (<c>.bin</c>, <c>.ckpt</c>, <c>.pt</c>, <c>.pth</c>; refused
/// because unpickling can execute arbitrary code, so convert it to safetensors with a trusted tool first), a malformed or
/// inconsistent safetensors file, weights that do not fit the model they are loaded into (missing, unexpected or
/// mis-shaped keys), a single-file checkpoint that does not match the key layout its configuration implies (unknown keys,
/// missing blocks, wrong shapes, ambiguous family), a LoRA file whose keys match no layer or whose tensors are
/// mis-shaped, a learned-embeddings file that holds no usable embedding or one whose width is not the text encoder's
/// (768: SD 1.x, 1024: SD 2.x), or it holds NaN or infinite values (which load without complaint and make every image
/// black; see <see cref="StateDictLoadOptions.CheckFinite"/>). Names the file and, where it applies, the tensor or key.
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

    /// <summary>The weights in <paramref name="source"/> (the file or files, as text) do not fit the module: <paramref name="report"/>
    /// lists the missing, unexpected and mis-shaped keys.</summary>
    internal static InvalidWeightsException Mismatch(string source, StateDictLoadReport report) =>
        new($"Weights in {source} do not match the module: {report.Describe()}", source, null, report.Describe(), [])
        {
            Report = report,
            Reason = InvalidWeightsReason.Misfit,
        };

    /// <summary>The LoRA file <paramref name="filePath"/> (at <paramref name="key"/>, when one key is at fault) cannot be used.</summary>
    internal static InvalidWeightsException Lora(string filePath, string? key, string problem) =>
        new(key is null ? $"'{filePath}': {problem}" : $"'{filePath}', key '{key}': {problem}", filePath, key, problem, []);

    /// <summary>The learned-embeddings file <paramref name="filePath"/> (or "memory") holds nothing usable as a token embedding.</summary>
    internal static InvalidWeightsException Embeddings(string filePath, string problem) =>
        new($"'{filePath}': {problem}", filePath, null, problem, []) { Reason = InvalidWeightsReason.Embeddings };

    /// <summary>The embedding of <paramref name="token"/> in <paramref name="source"/> (a file, or "memory") is
    /// <paramref name="width"/> wide; the text encoder's hidden size is <paramref name="expectedWidth"/>.</summary>
    internal static InvalidWeightsException EmbeddingWidth(string source, string token, long width, long expectedWidth) =>
        new($"'{source}': the embedding of '{token}' is {width} wide, but the text encoder's hidden size is {expectedWidth}. " +
            "It was trained for a different base model (768: SD 1.x, 1024: SD 2.x).",
            source, token, $"{width} wide, the text encoder's hidden size is {expectedWidth}", [])
        {
            Reason = InvalidWeightsReason.Embeddings,
            Width = width,
            ExpectedWidth = expectedWidth,
        };

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

    /// <summary>For weights that do not fit the module: the missing, unexpected and mis-shaped keys.</summary>
    internal StateDictLoadReport? Report { get; private init; }

    /// <summary>Whether the file is a learned-embeddings file or weights that do not fit the module (both say the file
    /// may belong to another base model), or anything else.</summary>
    internal InvalidWeightsReason Reason { get; private init; }

    /// <summary>For an embedding of the wrong width: its width.</summary>
    internal long? Width { get; private init; }

    /// <summary>For an embedding of the wrong width: the text encoder's hidden size.</summary>
    internal long? ExpectedWidth { get; private init; }
}

/// <summary>What <see cref="InvalidWeightsException"/> is about, where the library reacts differently.</summary>
internal enum InvalidWeightsReason
{
    /// <summary>A malformed, unsafe or non-finite file.</summary>
    Unusable,

    /// <summary>A learned-embeddings file that holds no usable embedding, or one of the wrong width.</summary>
    Embeddings,

    /// <summary>Weights whose keys or shapes do not fit the module.</summary>
    Misfit,
}
