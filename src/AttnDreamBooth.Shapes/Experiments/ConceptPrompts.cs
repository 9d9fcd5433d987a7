namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>Prompts that ask for a concept in contexts its photos never showed: generated from the world, or read from a
/// prompt file.</summary>
public static class ConceptPrompts
{
    /// <summary>The concept's place in a prompt file ("a photo of a {V} on the beach"); it stands for "[V] category".</summary>
    public const string Placeholder = "{V}";

    /// <summary>Largest prompt file read (1 MiB).</summary>
    public const int MaxFileBytes = 1 << 20;

    /// <summary>
    /// For every background of the world that is not among the concept's photo backgrounds and that the concept contrasts
    /// with (in the world's order): "a photo of a {} [background]" and "a photo of a {} [position] [background]", the
    /// positions taken in turn from the world's list, so every background and every position is asked for.
    /// </summary>
    public static IReadOnlyList<ConceptPrompt> NewContexts(ShapesWorld world, ConceptSpec concept)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(concept);
        var prompts = new List<ConceptPrompt>();
        var backgrounds = world.Backgrounds.Where(b => !concept.Photos.Backgrounds.Contains(b) && concept.ContrastsWith(b, world)).ToList();
        for (int i = 0; i < backgrounds.Count; i++)
        {
            var background = backgrounds[i];
            var position = world.Positions[i % world.Positions.Count];
            prompts.Add(new ConceptPrompt($"a photo of a {{}} {background.Phrase}", background, null));
            prompts.Add(new ConceptPrompt($"a photo of a {{}} {position.Phrase} {background.Phrase}", background, position));
        }
        return prompts;
    }

    /// <summary>
    /// Reads a prompt file: one prompt per line in the world's caption grammar, with <see cref="Placeholder"/> for the
    /// concept; blank lines and lines starting with <c>#</c> are skipped. See <see cref="Parse(string, ShapesWorld, string)"/>
    /// for the grammar.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidShapesSpecException">A line is not a prompt of the grammar (the message names the file and
    /// line), the file holds no prompt, or it is larger than <see cref="MaxFileBytes"/>.</exception>
    public static IReadOnlyList<ConceptPrompt> Load(string path, ShapesWorld world)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(world);
        if (!File.Exists(path)) throw new FileNotFoundException($"Prompt file '{path}' does not exist.", path);
        if (new FileInfo(path).Length > MaxFileBytes) throw new InvalidShapesSpecException(path, $"too large for a prompt file (limit {MaxFileBytes} bytes)");
        var prompts = new List<ConceptPrompt>();
        var lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            prompts.Add(Parse(line, world, $"{path}:{i + 1}"));
        }
        if (prompts.Count == 0) throw new InvalidShapesSpecException(path, "holds no prompt (every line is blank or a # comment)");
        return prompts;
    }

    /// <summary>
    /// Parses one prompt of the world's caption grammar with <see cref="Placeholder"/> for the concept:
    /// <c>[prefix] a|an [size] {V}</c> followed, in any order, by the background phrase (required), a position phrase and
    /// <c>next to a|an [size] [colour] [pattern] shape</c> — e.g. "a photo of a small {V} next to a blue circle on the
    /// beach". Prefixes, words and phrases are the world's (<see cref="ShapesWorld.Captions"/>, the attribute words, the
    /// position and background phrases).
    /// </summary>
    /// <param name="text">The prompt.</param>
    /// <param name="world">The world whose vocabulary the prompt uses.</param>
    /// <param name="source">Names the prompt in errors (e.g. "prompts.txt:7").</param>
    /// <exception cref="InvalidShapesSpecException">The prompt does not follow the grammar, names a background or position
    /// twice, or asks for a second object whose colour the world never draws on the background.</exception>
    public static ConceptPrompt Parse(string text, ShapesWorld world, string source = "prompt")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(source);
        var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        InvalidShapesSpecException Error(string problem) => new(source, $"{problem} in \"{string.Join(' ', words)}\"");
        int v = Array.IndexOf(words, Placeholder);
        if (v < 0 || words.Count(w => w.Contains(Placeholder, StringComparison.Ordinal)) != 1 || Array.LastIndexOf(words, Placeholder) != v)
            throw Error($"needs exactly one {Placeholder}, as a word of its own");

        // Before {V}: a prefix of the world's captions, an article and an optional size.
        int articleAt = v - 1;
        SizeSpec? size = null;
        if (articleAt >= 0 && world.Sizes.FirstOrDefault(s => s.Word == words[articleAt]) is { } sizeWord)
        {
            size = sizeWord;
            articleAt--;
        }
        if (articleAt < 0 || words[articleAt] is not ("a" or "an")) throw Error($"expects \"a\" or \"an\" (and optionally a size word) before {Placeholder}");
        string prefix = string.Join(' ', words[..articleAt]);
        if (!world.Captions.Prefixes.Contains(prefix))
            throw Error($"starts with \"{prefix}\", which is not one of the world's caption prefixes ({string.Join(", ", world.Captions.Prefixes.Select(p => $"\"{p}\""))})");

        BackgroundSpec? background = null;
        PositionSpec? position = null;
        PromptObject? second = null;
        int i = v + 1;
        while (i < words.Length)
        {
            if (words[i] == "next" && i + 1 < words.Length && words[i + 1] == "to")
            {
                if (second is not null) throw Error("names a second object twice");
                (second, i) = ParseObject(words, i + 2, world, Error);
            }
            else if (Match(words, i, world.Positions.Select(p => (p, p.Phrase))) is var (p, pEnd) && p is not null)
            {
                if (position is not null) throw Error($"names a position twice (\"{position.Phrase}\", \"{p.Phrase}\")");
                (position, i) = (p, pEnd);
            }
            else if (Match(words, i, world.Backgrounds.Select(b => (b, b.Phrase))) is var (b, bEnd) && b is not null)
            {
                if (background is not null) throw Error($"names a background twice (\"{background.Phrase}\", \"{b.Phrase}\")");
                (background, i) = (b, bEnd);
            }
            else
            {
                throw Error($"has \"{words[i]}\" where a background phrase, a position phrase or \"next to\" should follow");
            }
        }
        if (background is null) throw Error($"names no background (one of: {string.Join(", ", world.Backgrounds.Select(b => $"\"{b.Phrase}\""))})");
        if (second?.Color is { } color && !world.IsCompatible(color, background))
            throw Error($"asks for a {color.Name} {second.Shape.Name} {background.Phrase}, a colour the world never draws there (too little contrast)");
        var template = words.Select(w => w == Placeholder ? "{}" : w);
        return new ConceptPrompt(string.Join(' ', template), background, position) { Size = size, SecondObject = second };
    }

    /// <summary>
    /// Renders exactly what <paramref name="prompt"/> asks for with <paramref name="concept"/> as the subject: alone at the
    /// asked position (centre when none) and size (large when none), or with the second object as the world draws pairs
    /// (small unless asked otherwise, the concept on the left, the other on the right, solid and in the first colour the
    /// world draws on the background unless asked otherwise). The experiment judges these renders as the scores of a
    /// perfect model.
    /// </summary>
    public static ShapesRendering Render(ConceptPrompt prompt, ShapesWorld world, ConceptSpec concept)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(concept);
        return ShapesRenderer.Render(Scene(prompt, world, (size, position, x, y) => concept.Object(world, size, position, x, y, size.Side)), world.ImageSize);
    }

    /// <summary>The scene of <see cref="Render"/> with <paramref name="subject"/> (size, position, centre x, centre y) in
    /// the concept's place.</summary>
    internal static Scene Scene(ConceptPrompt prompt, ShapesWorld world, Func<SizeSpec, PositionSpec, double, double, SceneObject> subject)
    {
        var small = world.Sizes.MinBy(z => z.Side)!;
        if (prompt.SecondObject is { } second)
        {
            var byX = world.Positions.OrderBy(p => p.X).ToArray();
            var (left, right) = (byX[0], byX[^1]);
            var secondSize = second.Size ?? small;
            var color = second.Color ?? world.Colors.First(c => world.IsCompatible(c, prompt.Background));
            var solid = world.Patterns.FirstOrDefault(p => p.Kind == PatternKind.Solid) ?? world.Patterns[0];
            var other = new SceneObject(second.Shape, color, second.Pattern ?? solid, secondSize, right, right.X, right.Y, secondSize.Side);
            return new Scene(prompt.Background, 11, [subject(prompt.Size ?? small, left, left.X, left.Y), other]);
        }
        var position = prompt.Position ?? world.Positions.MinBy(p => Math.Abs(p.X - 0.5) + Math.Abs(p.Y - 0.5))!;
        var size = prompt.Size ?? world.Sizes.MaxBy(z => z.Side)!;
        return new Scene(prompt.Background, 11, [subject(size, position, position.X, position.Y)]);
    }

    /// <summary>The prompt as written in a prompt file: <see cref="ConceptPrompt.Template"/> with <see cref="Placeholder"/> for <c>{}</c>.</summary>
    public static string Text(ConceptPrompt prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return prompt.WithSubject(Placeholder);
    }

    private static (PromptObject, int) ParseObject(string[] words, int i, ShapesWorld world, Func<string, InvalidShapesSpecException> error)
    {
        if (i >= words.Length || words[i] is not ("a" or "an")) throw error("expects \"a\" or \"an\" after \"next to\"");
        i++;
        SizeSpec? size = i < words.Length ? world.Sizes.FirstOrDefault(s => s.Word == words[i]) : null;
        if (size is not null) i++;
        ColorSpec? color = i < words.Length ? world.Colors.FirstOrDefault(c => c.Word == words[i]) : null;
        if (color is not null) i++;
        PatternSpec? pattern = i < words.Length ? world.Patterns.FirstOrDefault(p => p.Word == words[i]) : null;
        if (pattern is not null) i++;
        var shape = i < words.Length ? world.Shapes.FirstOrDefault(s => s.Word == words[i]) : null;
        if (shape is null)
            throw error($"expects a shape word ({string.Join(", ", world.Shapes.Select(s => s.Word))}) after \"next to a [size] [colour] [pattern]\"{(i < words.Length ? $", not \"{words[i]}\"" : "")}");
        return (new PromptObject(shape, color, pattern, size), i + 1);
    }

    /// <summary>The longest of <paramref name="phrases"/> that <paramref name="words"/> spell from <paramref name="start"/>, and the index after it.</summary>
    private static (T? Item, int End) Match<T>(string[] words, int start, IEnumerable<(T Item, string Phrase)> phrases) where T : class
    {
        T? best = null;
        int bestEnd = start;
        foreach (var (item, phrase) in phrases)
        {
            var parts = phrase.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (start + parts.Length > words.Length || start + parts.Length <= bestEnd) continue;
            bool same = true;
            for (int k = 0; k < parts.Length && same; k++) same = words[start + k] == parts[k];
            if (same)
            {
                best = item;
                bestEnd = start + parts.Length;
            }
        }
        return (best, bestEnd);
    }
}
