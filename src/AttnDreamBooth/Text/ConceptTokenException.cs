namespace AttnDreamBooth.Text;

/// <summary>
/// A string cannot serve as a concept token: a new token is already in the vocabulary; a token is a special or control
/// token (<c>&lt;|startoftext|&gt;</c>, <c>&lt;|endoftext|&gt;</c>, the pad token, or any token the tokenizer folder
/// marks special), whose embedding is part of every prompt, so a learned row there would silently change every image;
/// or a word does not tokenize the way a concept needs (an initializer word to nothing at all, an existing-token
/// identifier to more than one token). The message says which and what to choose instead.
/// </summary>
public sealed class ConceptTokenException : AttnDreamBoothException
{
    private ConceptTokenException(string message, string token, int? tokenId, int? tokenCount, string? filePath, string? paramName)
        : base(message)
    {
        Token = token;
        TokenId = tokenId;
        TokenCount = tokenCount;
        FilePath = filePath;
        ParamName = paramName;
    }

    /// <summary>A token to be added as new already has id <paramref name="existingId"/>.</summary>
    internal static ConceptTokenException AlreadyExists(string token, int existingId) =>
        new($"The token '{token}' already exists (id {existingId}); a new token must not be in the vocabulary yet. " +
            "To train an existing token (DreamBooth-style 'sks'), declare it as an existing identifier.",
            token, existingId, null, null, "token");

    /// <summary><paramref name="token"/> is a special token of the tokenizer (named by <paramref name="source"/>, a
    /// file, or by code when null).</summary>
    internal static ConceptTokenException Reserved(string token, int tokenId, string? source = null) =>
        new((source is null ? "" : $"'{source}': ") +
            $"'{token}' is a special token (id {tokenId}) of the tokenizer and cannot be a concept token or receive a learned embedding; " +
            "choose another identifier (a new word such as new_concept_v0, or a rare existing word such as sks).",
            token, tokenId, null, source, "token");

    /// <summary><paramref name="text"/> tokenizes to <paramref name="tokenCount"/> tokens, which does not fit.</summary>
    internal static ConceptTokenException Tokenization(string text, int tokenCount, string problem, string? paramName) =>
        new($"'{text}' tokenizes to {tokenCount} token(s): {problem}", text, null, tokenCount, null, paramName);

    /// <summary>The token or word at fault.</summary>
    public string Token { get; }

    /// <summary>Its id, when it is already in the vocabulary (an existing or a special token).</summary>
    public int? TokenId { get; }

    /// <summary>How many tokens the word gives, when that is the problem.</summary>
    public int? TokenCount { get; }

    /// <summary>The embedding file that named the token, or null when it came from code or the command line.</summary>
    public string? FilePath { get; }

    /// <summary>The name of the argument at fault.</summary>
    public string? ParamName { get; }
}
