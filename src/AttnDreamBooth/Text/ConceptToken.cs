namespace AttnDreamBooth.Text;

/// <summary>How a concept identifier relates to the vocabulary.</summary>
internal enum ConceptTokenKind
{
    /// <summary>A token the tokenizer does not know yet; it is added as one whole token with the next free id
    /// (AttnDreamBooth's <c>new_concept_v0</c>, Textual Inversion's <c>&lt;cat-toy&gt;</c>).</summary>
    New,

    /// <summary>A word that already is one vocabulary token (DreamBooth's <c>sks</c>, id 48136); its row is trained
    /// through the concept parameter while the table keeps the original.</summary>
    Existing,
}

/// <summary>One concept identifier to train: the token, how it relates to the vocabulary, and the word whose first
/// token's embedding initialises it.</summary>
/// <param name="Token">The identifier as written in prompts.</param>
/// <param name="Kind">Whether it must be new or must already exist.</param>
/// <param name="InitializerWord">The word whose first token's embedding is the initial value (e.g. the class word
/// <c>dog</c>). Required for a new token; for an existing token null means "start from its own row".</param>
internal sealed record ConceptToken(string Token, ConceptTokenKind Kind, string? InitializerWord)
{
    /// <summary>A new token initialised from <paramref name="initializerWord"/>.</summary>
    public static ConceptToken New(string token, string initializerWord) => new(token, ConceptTokenKind.New, initializerWord);

    /// <summary>An existing vocabulary token; initialised from <paramref name="initializerWord"/> or, when null, from its own row.</summary>
    public static ConceptToken Existing(string token, string? initializerWord = null) => new(token, ConceptTokenKind.Existing, initializerWord);
}
