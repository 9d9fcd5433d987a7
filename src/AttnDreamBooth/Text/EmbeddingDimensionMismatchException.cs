namespace AttnDreamBooth.Text;

/// <summary>A learned embedding's width does not match the text encoder's hidden size (e.g. an SD 1.x embedding, 768
/// wide, loaded into an SD 2.x text encoder, 1024 wide).</summary>
public sealed class EmbeddingDimensionMismatchException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public EmbeddingDimensionMismatchException(string source, string token, long actual, long expected)
        : base($"'{source}': the embedding of '{token}' is {actual} wide, but the text encoder's hidden size is {expected}. " +
               "It was trained for a different base model (768: SD 1.x, 1024: SD 2.x).")
    {
        Source = source;
        Token = token;
        Actual = actual;
        Expected = expected;
    }

    /// <summary>The file (or "memory").</summary>
    public new string Source { get; }

    /// <summary>The token whose embedding is mis-sized.</summary>
    public string Token { get; }

    /// <summary>The embedding's width.</summary>
    public long Actual { get; }

    /// <summary>The text encoder's hidden size.</summary>
    public long Expected { get; }
}
