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
    /// <summary>The size the prompt asks for the concept ("a small {}"), or null when it names none.</summary>
    public SizeSpec? Size { get; init; }

    /// <summary>The second object the prompt asks for ("next to a blue circle"), or null when it names none.</summary>
    public PromptObject? SecondObject { get; init; }

    /// <summary>
    /// Every attribute the prompt asks for, as (attribute, value) in the order of <see cref="PromptAttributes.All"/>:
    /// always the background, then whichever of the concept's position and size and the second object's shape, colour,
    /// pattern and size it names (world names, e.g. ("background", "beach"), ("second-color", "blue")).
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>> RequestedAttributes
    {
        get
        {
            var list = new List<KeyValuePair<string, string>> { new(PromptAttributes.Background, Background.Name) };
            if (Position is not null) list.Add(new(PromptAttributes.Position, Position.Name));
            if (Size is not null) list.Add(new(PromptAttributes.Size, Size.Name));
            if (SecondObject is { } second)
            {
                list.Add(new(PromptAttributes.SecondShape, second.Shape.Name));
                if (second.Color is not null) list.Add(new(PromptAttributes.SecondColor, second.Color.Name));
                if (second.Pattern is not null) list.Add(new(PromptAttributes.SecondPattern, second.Pattern.Name));
                if (second.Size is not null) list.Add(new(PromptAttributes.SecondSize, second.Size.Name));
            }
            return list;
        }
    }

    /// <summary>How demanding the prompt is: the number of <see cref="RequestedAttributes"/> (1 = background only).</summary>
    public int Complexity => RequestedAttributes.Count;

    /// <summary>The prompt with <paramref name="subject"/> in place of <c>{}</c>.</summary>
    public string WithSubject(string subject)
    {
        ArgumentNullException.ThrowIfNull(subject);
        return Template.Replace("{}", subject, StringComparison.Ordinal);
    }
}

/// <summary>A second object a prompt asks for: its shape and whichever of colour, pattern and size it names.</summary>
/// <param name="Shape">The shape.</param>
/// <param name="Color">The colour, or null when the prompt names none.</param>
/// <param name="Pattern">The pattern, or null when the prompt names none.</param>
/// <param name="Size">The size, or null when the prompt names none.</param>
public sealed record PromptObject(ShapeSpec Shape, ColorSpec? Color, PatternSpec? Pattern, SizeSpec? Size);

/// <summary>The names of the attributes a <see cref="ConceptPrompt"/> can ask for (columns of the experiment's tables).</summary>
public static class PromptAttributes
{
    /// <summary>The background (every prompt names one).</summary>
    public const string Background = "background";

    /// <summary>The concept's position.</summary>
    public const string Position = "position";

    /// <summary>The concept's size.</summary>
    public const string Size = "size";

    /// <summary>The second object's shape (its presence).</summary>
    public const string SecondShape = "second-shape";

    /// <summary>The second object's colour.</summary>
    public const string SecondColor = "second-color";

    /// <summary>The second object's pattern.</summary>
    public const string SecondPattern = "second-pattern";

    /// <summary>The second object's size.</summary>
    public const string SecondSize = "second-size";

    /// <summary>Every attribute, in table order.</summary>
    public static IReadOnlyList<string> All { get; } = [Background, Position, Size, SecondShape, SecondColor, SecondPattern, SecondSize];
}
