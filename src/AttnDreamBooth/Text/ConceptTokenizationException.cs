namespace AttnDreamBooth.Text;

/// <summary>An initializer word (or an existing-token identifier) does not tokenize the way a concept needs: to nothing
/// at all, or, for an identifier, to more than one token.</summary>
public sealed class ConceptTokenizationException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public ConceptTokenizationException(string text, int tokenCount, string problem, string? paramName)
        : base($"'{text}' tokenizes to {tokenCount} token(s): {problem}")
    {
        ParamName = paramName;
        Text = text;
        TokenCount = tokenCount;
    }

    /// <summary>The offending word.</summary>
    public string Text { get; }

    /// <summary>How many tokens it gives.</summary>
    public int TokenCount { get; }

    /// <summary>The name of the argument at fault.</summary>
    public string? ParamName { get; }
}
