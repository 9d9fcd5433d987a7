using System.Text.RegularExpressions;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Evaluation;

/// <summary>Which of the DreamBooth dataset's two prompt lists a concept uses.</summary>
internal enum SubjectKind
{
    /// <summary>Objects (toys, sneakers, teapots, …): backgrounds, materials, colours.</summary>
    Object,

    /// <summary>Live subjects (pets and other animals): backgrounds, outfits, accessories, colours.</summary>
    LiveSubject,
}

/// <summary>
/// The evaluation prompts of the DreamBooth dataset (google/dreambooth <c>dataset/prompts_and_classes.txt</c>, CC BY 4.0,
/// Ruiz et al. 2023), rewritten from their Python <c>'a {0} {1} …'.format(unique_token, class_token)</c> form to the
/// generation placeholder <c>{}</c>, which expands to "[V] category" (<c>"a {} on the beach"</c>).
/// </summary>
internal static partial class DreamBoothPrompts
{
    private static readonly string[] Shared =
    [
        "a {} in the jungle", "a {} in the snow", "a {} on the beach", "a {} on a cobblestone street", "a {} on top of pink fabric",
        "a {} on top of a wooden floor", "a {} with a city in the background", "a {} with a mountain in the background",
        "a {} with a blue house in the background", "a {} on top of a purple rug in a forest",
    ];

    private static readonly string[] Colours = ["a red {}", "a purple {}", "a shiny {}", "a wet {}", "a cube shaped {}"];

    /// <summary>The 25 object prompts.</summary>
    public static IReadOnlyList<string> Object { get; } =
    [
        .. Shared,
        "a {} with a wheat field in the background", "a {} with a tree and autumn leaves in the background",
        "a {} with the Eiffel Tower in the background", "a {} floating on top of water", "a {} floating in an ocean of milk",
        "a {} on top of green grass with sunflowers around it", "a {} on top of a mirror", "a {} on top of the sidewalk in a crowded street",
        "a {} on top of a dirt road", "a {} on top of a white rug",
        .. Colours,
    ];

    /// <summary>The 25 live-subject prompts.</summary>
    public static IReadOnlyList<string> LiveSubject { get; } =
    [
        .. Shared,
        "a {} wearing a red hat", "a {} wearing a santa hat", "a {} wearing a rainbow scarf", "a {} wearing a black top hat and a monocle",
        "a {} in a chef outfit", "a {} in a firefighter outfit", "a {} in a police outfit", "a {} wearing pink glasses",
        "a {} wearing a yellow shirt", "a {} in a purple wizard outfit",
        .. Colours,
    ];

    /// <summary>Categories that take the live-subject list (the dataset's live subjects are its dogs and cats; other
    /// animals are treated alike). Anything else, including "stuffed animal", is an object.</summary>
    public static IReadOnlySet<string> LiveCategories { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "dog", "cat", "puppy", "kitten", "animal", "pet", "bird", "parrot", "horse", "rabbit", "bunny", "hamster", "guinea pig",
        "fox", "wolf", "bear", "monkey", "cow", "sheep", "goat", "pig", "duck", "chicken", "turtle", "lizard", "fish", "sloth", "otter",
    };

    /// <summary>The subject kind of a category (e.g. "dog" → live subject, "backpack" → object).</summary>
    public static SubjectKind KindOf(string category)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(category);
        return LiveCategories.Contains(category.Trim()) ? SubjectKind.LiveSubject : SubjectKind.Object;
    }

    /// <summary>The prompt list of a subject kind.</summary>
    public static IReadOnlyList<string> For(SubjectKind kind) => kind == SubjectKind.LiveSubject ? LiveSubject : Object;

    /// <summary>Expands the <c>{}</c> placeholder to "<paramref name="identifier"/> <paramref name="category"/>".</summary>
    /// <exception cref="ArgumentException">The prompt has no placeholder.</exception>
    public static string Expand(string prompt, string identifier, string category)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (!prompt.Contains("{}", StringComparison.Ordinal)) throw new ArgumentException($"The prompt '{prompt}' has no {{}} placeholder.", nameof(prompt));
        return PromptPlaceholders.Expand(prompt, identifier, category);
    }

    /// <summary>The prompt lists and the subject classes of a file in the format of the dataset's <c>prompts_and_classes.txt</c>.</summary>
    /// <param name="ObjectPrompts">The "Object Prompts" list, with <c>{}</c> placeholders.</param>
    /// <param name="LiveSubjectPrompts">The "Live Subject Prompts" list, with <c>{}</c> placeholders.</param>
    /// <param name="Classes">subject_name → class.</param>
    public sealed record PromptFile(IReadOnlyList<string> ObjectPrompts, IReadOnlyList<string> LiveSubjectPrompts, IReadOnlyDictionary<string, string> Classes);

    /// <summary>Parses the dataset's <c>prompts_and_classes.txt</c> format: a "Classes" CSV, then Python lists of
    /// <c>'a {0} {1} …'.format(unique_token, class_token)</c> under "Object Prompts" and "Live Subject Prompts".</summary>
    /// <exception cref="FormatException">A section is missing or a prompt line is not of that form.</exception>
    public static PromptFile Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var classes = new Dictionary<string, string>(StringComparer.Ordinal);
        var objects = new List<string>();
        var live = new List<string>();
        List<string>? current = null;
        bool inClasses = false;
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0) continue;
            switch (line)
            {
                case "Classes": inClasses = true; current = null; continue;
                case "Prompts": inClasses = false; continue;
                case "Object Prompts": current = objects; continue;
                case "Live Subject Prompts": current = live; continue;
            }
            if (inClasses)
            {
                var cells = line.Split(',');
                if (cells.Length == 2 && cells[0] != "subject_name") classes[cells[0].Trim()] = cells[1].Trim();
                continue;
            }
            if (current is null || line.StartsWith("prompt_list", StringComparison.Ordinal) || line == "]") continue;
            var match = FormatPrompt().Match(line);
            if (!match.Success) throw new FormatException($"Not a prompt of the form 'a {{0}} {{1}} …'.format(unique_token, class_token): {line}");
            current.Add(match.Groups["text"].Value.Replace("{0} {1}", "{}", StringComparison.Ordinal));
        }
        if (objects.Count == 0 || live.Count == 0) throw new FormatException("The text has no 'Object Prompts' or no 'Live Subject Prompts' list.");
        return new PromptFile(objects, live, classes);
    }

    [GeneratedRegex(@"^'(?<text>[^']*\{0\} \{1\}[^']*)'\.format\(unique_token, class_token\),?$")]
    private static partial Regex FormatPrompt();
}
