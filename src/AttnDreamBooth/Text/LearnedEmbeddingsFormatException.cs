namespace AttnDreamBooth.Text;

/// <summary>A learned-embeddings file holds nothing this library recognises as a token embedding, or an embedding whose
/// width does not match the text encoder's hidden size (e.g. an SD 1.x embedding, 768 wide, loaded into an SD 2.x text
/// encoder, 1024 wide; then <see cref="Token"/>, <see cref="Width"/> and <see cref="ExpectedWidth"/> say which).</summary>
public sealed class LearnedEmbeddingsFormatException : AttnDreamBoothException
{
    /// <summary>Creates the exception for <paramref name="filePath"/>.</summary>
    public LearnedEmbeddingsFormatException(string filePath, string problem)
        : base($"'{filePath}': {problem}")
    {
        FilePath = filePath;
    }

    private LearnedEmbeddingsFormatException(string filePath, string token, long width, long expectedWidth)
        : this(filePath, $"the embedding of '{token}' is {width} wide, but the text encoder's hidden size is {expectedWidth}. " +
                         "It was trained for a different base model (768: SD 1.x, 1024: SD 2.x).")
    {
        Token = token;
        Width = width;
        ExpectedWidth = expectedWidth;
    }

    /// <summary>The embedding of <paramref name="token"/> in <paramref name="source"/> (a file, or "memory") is
    /// <paramref name="width"/> wide; the text encoder's hidden size is <paramref name="expectedWidth"/>.</summary>
    internal static LearnedEmbeddingsFormatException WidthMismatch(string source, string token, long width, long expectedWidth) =>
        new(source, token, width, expectedWidth);

    /// <summary>The file at fault (or "memory").</summary>
    public string FilePath { get; }

    /// <summary>The token whose embedding is mis-sized, when the width is the problem.</summary>
    public string? Token { get; }

    /// <summary>The embedding's width, when it is the problem.</summary>
    public long? Width { get; }

    /// <summary>The text encoder's hidden size, when the width is the problem.</summary>
    public long? ExpectedWidth { get; }
}
