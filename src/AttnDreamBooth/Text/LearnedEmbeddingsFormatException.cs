namespace AttnDreamBooth.Text;

/// <summary>A learned-embeddings file holds nothing this library recognises as a token embedding.</summary>
public sealed class LearnedEmbeddingsFormatException : AttnDreamBoothException
{
    /// <summary>Creates the exception for <paramref name="filePath"/>.</summary>
    public LearnedEmbeddingsFormatException(string filePath, string problem)
        : base($"'{filePath}': {problem}")
    {
        FilePath = filePath;
    }

    /// <summary>The file at fault.</summary>
    public string FilePath { get; }
}
