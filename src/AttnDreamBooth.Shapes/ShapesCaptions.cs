using System.Text;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// Captions of scenes: "[prefix] a [size] [colour] [pattern] shape [position] [background]", or for two objects
/// "[prefix] a … shape next to a … shape [background]". Attribute words are dropped at random by the world's
/// <see cref="CaptionSpec"/> so that short prompts ("a star") and long ones are both seen.
/// </summary>
public static class ShapesCaptions
{
    /// <summary>A caption with attribute words kept with the rule's probabilities (draws from <paramref name="random"/> in a fixed order).</summary>
    internal static string Describe(Scene scene, CaptionSpec rules, WorldRandom random)
    {
        ArgumentNullException.ThrowIfNull(scene);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(random);
        string prefix = rules.Prefixes[random.NextInt(rules.Prefixes.Count)];
        var parts = new List<string>();
        for (int i = 0; i < scene.Objects.Count; i++)
        {
            var o = scene.Objects[i];
            bool size = random.NextBool(rules.KeepSize), color = random.NextBool(rules.KeepColor), pattern = random.NextBool(rules.KeepPattern);
            if (i > 0) parts.Add("next to");
            parts.Add(ObjectPhrase(o, size, color, pattern));
        }
        bool position = random.NextBool(rules.KeepPosition), background = random.NextBool(rules.KeepBackground);
        if (position && scene.Objects.Count == 1) parts.Add(scene.Objects[0].Position.Phrase);
        if (background) parts.Add(scene.Background.Phrase);
        return Join(prefix, parts);
    }

    /// <summary>The caption with every attribute word, e.g. "a photo of a large red striped star on the left in the snow".</summary>
    public static string Full(Scene scene, string prefix = "a photo of")
    {
        ArgumentNullException.ThrowIfNull(scene);
        ArgumentNullException.ThrowIfNull(prefix);
        var parts = new List<string>();
        for (int i = 0; i < scene.Objects.Count; i++)
        {
            if (i > 0) parts.Add("next to");
            parts.Add(ObjectPhrase(scene.Objects[i], true, true, true));
        }
        if (scene.Objects.Count == 1) parts.Add(scene.Objects[0].Position.Phrase);
        parts.Add(scene.Background.Phrase);
        return Join(prefix, parts);
    }

    /// <summary>"a"/"an" + the kept words; a concept object contributes only its shape word (its look is the concept's).</summary>
    private static string ObjectPhrase(SceneObject o, bool size, bool color, bool pattern)
    {
        var words = new List<string>();
        if (size) words.Add(o.Size.Word);
        if (o.Concept is null)
        {
            if (color) words.Add(o.Color.Word);
            if (pattern) words.Add(o.Pattern.Word);
        }
        words.Add(o.Shape.Word);
        return Article(words[0]) + " " + string.Join(' ', words);
    }

    private static string Article(string nextWord) => "aeiou".Contains(nextWord[0], StringComparison.Ordinal) ? "an" : "a";

    private static string Join(string prefix, List<string> parts)
    {
        var sb = new StringBuilder(prefix);
        foreach (string p in parts)
        {
            if (sb.Length > 0) sb.Append(' ');
            sb.Append(p);
        }
        return sb.ToString();
    }
}
