namespace AttnDreamBooth.Models.Lora;

/// <summary>A LoRA file or a LoRA target is invalid: unknown or unmatched keys, wrong shapes, layers that cannot carry
/// an adapter. Names the file (when there is one), the key or module, and what is wrong.</summary>
public sealed class LoraException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public LoraException(string? filePath, string? key, string problem, Exception? inner = null)
        : base(Describe(filePath, key, problem), inner)
    {
        FilePath = filePath;
        Key = key;
        Problem = problem;
    }

    /// <summary>The LoRA file at fault, or null when the problem is not about a file.</summary>
    public string? FilePath { get; }

    /// <summary>The key or module path at fault, or null.</summary>
    public string? Key { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }

    private static string Describe(string? filePath, string? key, string problem) =>
        (filePath, key) switch
        {
            (null, null) => problem,
            (null, _) => $"'{key}': {problem}",
            (_, null) => $"'{filePath}': {problem}",
            _ => $"'{filePath}', key '{key}': {problem}",
        };
}
