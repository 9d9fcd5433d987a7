using System.Text.Json.Serialization;

namespace AttnDreamBooth.Personalization;

/// <summary>Where the [V] token's embedding row starts.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<EmbeddingInitialization>))]
public enum EmbeddingInitialization
{
    /// <summary>The category word's first sub-token embedding (AttnDreamBooth and Textual Inversion). Works for a new
    /// token and replaces an existing token's row.</summary>
    CategoryWord = 0,

    /// <summary>The identifier token's own embedding, unchanged (DreamBooth's rare token such as "sks"). The token must
    /// exist in the vocabulary.</summary>
    IdentifierToken = 1,
}
