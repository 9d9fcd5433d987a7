namespace AttnDreamBooth.Text;

/// <summary>
/// The one place a prompt's concept placeholders are expanded, for generation, evaluation and validation prompts alike:
/// <c>{}</c> becomes "[V] category" (the official convention, e.g. "a {} in the snow" → "a sks dog in the snow"; just
/// "[V]" for a concept without a category), <c>{token}</c> the identifier and <c>{category}</c> the category. Any other
/// brace is an error, so a misspelt placeholder never reaches the text encoder as literal text.
/// </summary>
internal static class PromptPlaceholders
{
    /// <summary>The placeholder for "[V] category".</summary>
    public const string Concept = "{}";

    /// <summary>The placeholder for the identifier token alone.</summary>
    public const string Token = "{token}";

    /// <summary>The placeholder for the category word alone.</summary>
    public const string Category = "{category}";

    /// <summary>Whether <paramref name="prompt"/> uses any placeholder.</summary>
    public static bool HasPlaceholder(string prompt) =>
        prompt.Contains(Concept, StringComparison.Ordinal) || prompt.Contains(Token, StringComparison.Ordinal) || prompt.Contains(Category, StringComparison.Ordinal);

    /// <summary>Expands every placeholder of <paramref name="prompt"/>; with <paramref name="token"/> null (no concept),
    /// a prompt that uses one is refused.</summary>
    /// <param name="prompt">The prompt.</param>
    /// <param name="token">The identifier [V], or null when no concept is loaded.</param>
    /// <param name="category">The category word; empty for a concept without one.</param>
    /// <exception cref="ArgumentException">The prompt holds another placeholder or a stray brace.</exception>
    /// <exception cref="InvalidOperationException">The prompt uses a placeholder but <paramref name="token"/> is null.</exception>
    public static string Expand(string prompt, string? token, string category)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(category);
        string rest = prompt.Replace(Concept, "", StringComparison.Ordinal).Replace(Token, "", StringComparison.Ordinal).Replace(Category, "", StringComparison.Ordinal);
        if (rest.Contains('{') || rest.Contains('}'))
            throw new ArgumentException($"The prompt '{prompt}' contains a placeholder other than {Concept}, {Token} and {Category}, or a stray brace.", nameof(prompt));
        if (!HasPlaceholder(prompt)) return prompt;
        if (token is null)
            throw new InvalidOperationException($"The prompt '{prompt}' uses a concept placeholder but no concept is loaded; train one or load it with PersonalizedModel.LoadAsync.");
        return prompt
            .Replace(Concept, category.Length == 0 ? token : $"{token} {category}", StringComparison.Ordinal)
            .Replace(Token, token, StringComparison.Ordinal)
            .Replace(Category, category, StringComparison.Ordinal);
    }
}
