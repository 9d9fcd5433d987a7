namespace AttnDreamBooth.IO;

/// <summary>A safetensors file is malformed or inconsistent. Names the file and, where it applies, the tensor.</summary>
public sealed class SafetensorsFormatException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public SafetensorsFormatException(string filePath, string? tensorName, string problem, Exception? inner = null)
        : base(Compose(filePath, tensorName, problem), inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
        Problem = problem;
    }

    /// <summary>The file that was being read.</summary>
    public string FilePath { get; }

    /// <summary>The tensor entry at fault, or null when the problem is with the file as a whole.</summary>
    public string? TensorName { get; }

    /// <summary>What is wrong, without the file and tensor names.</summary>
    public string Problem { get; }

    private static string Compose(string file, string? tensor, string problem) =>
        tensor is null ? $"Invalid safetensors file '{file}': {problem}" : $"Invalid safetensors file '{file}', tensor '{tensor}': {problem}";
}
