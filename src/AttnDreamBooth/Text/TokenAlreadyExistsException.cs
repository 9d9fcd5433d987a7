namespace AttnDreamBooth.Text;

/// <summary>A token was to be added as new, but the tokenizer already has it (as a vocabulary word, an added token or
/// a special token). Use an existing-token identifier instead, or pick a string the vocabulary does not hold.</summary>
public sealed class TokenAlreadyExistsException : AttnDreamBoothException
{
    /// <summary>Creates the exception for <paramref name="token"/>, which already has id <paramref name="existingId"/>.</summary>
    public TokenAlreadyExistsException(string token, int existingId)
        : base($"The token '{token}' already exists (id {existingId}); a new token must not be in the vocabulary yet. " +
               "To train an existing token (DreamBooth-style 'sks'), declare it as an existing identifier.")
    {
        ParamName = "token";
        Token = token;
        ExistingId = existingId;
    }

    /// <summary>The token that already exists.</summary>
    public string Token { get; }

    /// <summary>Its id.</summary>
    public int ExistingId { get; }

    /// <summary>The name of the argument at fault.</summary>
    public string? ParamName { get; }
}
