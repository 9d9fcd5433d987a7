namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>
/// A prompt that puts a concept into a context the analyzer can check: <see cref="Template"/> holds <c>{}</c> where
/// the subject goes ("a [V] star" for the personalized model, "a star" for the base model).
/// </summary>
/// <param name="Template">The prompt with a <c>{}</c> placeholder, e.g. "a photo of a {} on the beach".</param>
/// <param name="Background">The background the prompt asks for.</param>
/// <param name="Position">The position the prompt asks for, or null when it names none.</param>
public sealed record ConceptPrompt(string Template, BackgroundSpec Background, PositionSpec? Position)
{
    /// <summary>The prompt with <paramref name="subject"/> in place of <c>{}</c>.</summary>
    public string WithSubject(string subject)
    {
        ArgumentNullException.ThrowIfNull(subject);
        return Template.Replace("{}", subject, StringComparison.Ordinal);
    }
}
