using AttnDreamBooth.IO;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Personalization;

/// <summary>Binds a saved concept's token to the pipeline's tokenizer with the identity recorded at training time.</summary>
internal static class ConceptTokenRecord
{
    /// <summary>The binding of <paramref name="metadata"/>'s token, checked against what was recorded. Concepts saved
    /// before the id was recorded are bound by <see cref="ConceptTokenIdentity.Resolve"/>, the rule training used.</summary>
    /// <exception cref="ModelConfigException">The recorded identity does not hold in this tokenizer (another base model).</exception>
    /// <exception cref="ConceptTokenException">The token is a special token.</exception>
    public static ConceptTokenBinding Bind(string metadataPath, PersonalizedModelMetadata metadata, ClipTokenizer tokenizer)
    {
        var binding = ConceptTokenIdentity.Resolve(tokenizer, metadata.Token, metadataPath);
        if (metadata.TokenId is not { } recorded) return binding;

        string recordedText = $"'{metadata.TokenSpelling ?? metadata.Token}' (id {recorded})";
        var kind = metadata.TokenKind ?? (recorded < tokenizer.BaseVocabularySize ? ConceptTokenKind.Existing : ConceptTokenKind.New);
        if (kind == ConceptTokenKind.Existing)
        {
            if (binding.Kind != ConceptTokenKind.Existing || binding.ExistingId != recorded)
            {
                string now = binding.Kind == ConceptTokenKind.New ? "does not know it" : $"gives '{binding.Spelling}' (id {binding.ExistingId})";
                throw new ModelConfigException(metadataPath, "token_id",
                    $"the token '{metadata.Token}' was trained as the existing token {recordedText}, but this pipeline's tokenizer {now}: the concept belongs to another base model");
            }
            if (metadata.TokenSpelling is { } spelling && !string.Equals(binding.Spelling, spelling, StringComparison.Ordinal))
                throw new ModelConfigException(metadataPath, "token_spelling",
                    $"id {recorded} is '{binding.Spelling}' in this pipeline's tokenizer but was '{spelling}' when the concept was trained: the concept belongs to another base model");
            return binding;
        }
        if (binding.Kind != ConceptTokenKind.New)
            throw new ModelConfigException(metadataPath, "token_kind",
                $"the token '{metadata.Token}' was trained as a new token {recordedText}, but this pipeline's tokenizer already has it as '{binding.Spelling}' (id {binding.ExistingId}); load the concept onto a fresh pipeline of its base model");
        return binding;
    }
}
