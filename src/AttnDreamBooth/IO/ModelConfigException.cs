namespace AttnDreamBooth.IO;

/// <summary>A model folder or configuration file is missing, malformed, or holds an invalid value.
/// Names the file and, where it applies, the key.</summary>
public sealed class ModelConfigException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public ModelConfigException(string filePath, string? key, string problem, Exception? inner = null)
        : base(key is null ? $"'{filePath}': {problem}" : $"'{filePath}', key '{key}': {problem}", inner)
    {
        FilePath = filePath;
        Key = key;
        Problem = problem;
    }

    /// <summary>The file (or folder) at fault.</summary>
    public string FilePath { get; }

    /// <summary>The configuration key at fault, or null.</summary>
    public string? Key { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }
}
