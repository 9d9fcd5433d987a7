namespace AttnDreamBooth.Text;

/// <summary>A special or control token (<c>&lt;|startoftext|&gt;</c>, <c>&lt;|endoftext|&gt;</c>, the pad token, or any
/// token the tokenizer folder marks special) was given as a concept token, or an embedding file tries to replace its
/// row. Its embedding is part of every prompt (BOS, EOS and padding fill most of the 77 positions), so a learned row
/// there would silently change every image.</summary>
public sealed class ReservedConceptTokenException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="token">The reserved token.</param>
    /// <param name="tokenId">Its id.</param>
    /// <param name="source">The file that named it, or null when it came from code or the command line.</param>
    public ReservedConceptTokenException(string token, int tokenId, string? source = null)
        : base((source is null ? "" : $"'{source}': ") +
               $"'{token}' is a special token (id {tokenId}) of the tokenizer and cannot be a concept token or receive a learned embedding; " +
               "choose another identifier (a new word such as new_concept_v0, or a rare existing word such as sks).")
    {
        ParamName = "token";
        Token = token;
        TokenId = tokenId;
        FilePath = source;
    }

    /// <summary>The reserved token.</summary>
    public string Token { get; }

    /// <summary>Its id.</summary>
    public int TokenId { get; }

    /// <summary>The embedding file that named it, or null.</summary>
    public string? FilePath { get; }

    /// <summary>The name of the argument at fault.</summary>
    public string? ParamName { get; }
}
