namespace AttnDreamBooth.Text;

/// <summary>How a concept identifier binds to the vocabulary: a <see cref="ConceptTokenKind.New"/> token gets the next
/// free id when it is added; an <see cref="ConceptTokenKind.Existing"/> one is the single id that prompts containing
/// the word produce (<c>cat</c> → <c>cat&lt;/w&gt;</c>, 2368 — not the word-start piece <c>cat</c>, 1481).</summary>
/// <param name="Token">The identifier as written in prompts.</param>
/// <param name="Kind">New or existing.</param>
/// <param name="ExistingId">The id of an existing token; null for a new one (its id is assigned when it is added).</param>
/// <param name="Spelling">The vocabulary spelling of an existing token (e.g. <c>cat&lt;/w&gt;</c>); the token itself for a new one.</param>
internal sealed record ConceptTokenBinding(string Token, ConceptTokenKind Kind, int? ExistingId, string Spelling);

/// <summary>
/// The one token-identity rule used by training, saving and loading a concept: a token the tokenizer knows (as a
/// whole word, an exact vocabulary spelling or an added token) is an existing identifier bound to the one id that
/// encoding it gives; any other token is new. Special and control tokens are refused.
/// </summary>
internal static class ConceptTokenIdentity
{
    /// <summary>Binds <paramref name="token"/> against <paramref name="tokenizer"/> without changing the tokenizer.</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="token">The identifier.</param>
    /// <param name="source">The file the token came from (for messages), or null.</param>
    /// <exception cref="ConceptTokenException">The token is a special or control token, or it is known but does not
    /// encode to exactly one id.</exception>
    public static ConceptTokenBinding Resolve(ClipTokenizer tokenizer, string token, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrWhiteSpace(token);
        ThrowIfReserved(tokenizer, token, source);
        if (!tokenizer.TryGetTokenId(token, out _)) return new ConceptTokenBinding(token, ConceptTokenKind.New, null, token);
        var ids = tokenizer.EncodeWithoutSpecialTokens(token);
        if (ids.Count != 1)
            throw ConceptTokenException.Tokenization(token, ids.Count, "an existing-token identifier must be exactly one vocabulary token" + (source is null ? "" : $" (in '{source}')"), "token");
        if (tokenizer.IsSpecialTokenId(ids[0])) throw ConceptTokenException.Reserved(token, ids[0], source);
        return new ConceptTokenBinding(token, ConceptTokenKind.Existing, ids[0], tokenizer.GetToken(ids[0]));
    }

    /// <summary>Whether <paramref name="token"/> is one of the tokenizer's special tokens (BOS, EOS, PAD, UNK and any the
    /// folder marks special), or the text that is split out as one of them.</summary>
    public static bool IsReserved(ClipTokenizer tokenizer, string token, out int id)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(token);
        id = -1;
        if (tokenizer.SpecialTokens.Contains(token, StringComparer.Ordinal))
        {
            tokenizer.TryGetTokenId(token, out id);
            return true;
        }
        return tokenizer.TryGetTokenId(token, out id) && tokenizer.IsSpecialTokenId(id);
    }

    /// <summary>Throws <see cref="ConceptTokenException"/> when <paramref name="token"/> is reserved.</summary>
    public static void ThrowIfReserved(ClipTokenizer tokenizer, string token, string? source = null)
    {
        if (IsReserved(tokenizer, token, out int id)) throw ConceptTokenException.Reserved(token, id, source);
    }
}
