using System.Text.Json;
using AttnDreamBooth.Imaging;
using SkiaSharp;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// The Shapes world: the attribute vocabulary (shapes, colours, patterns, sizes, positions, backgrounds), caption
/// rules and the held-out combinations, loaded from a JSON spec and validated. <see cref="Default"/> is the spec
/// shipped in this assembly (<c>world.json</c>). Immutable and thread-safe.
/// </summary>
public sealed class ShapesWorld
{
    private static readonly Lazy<ShapesWorld> DefaultWorld = new(LoadEmbedded);

    private readonly Dictionary<(string Color, string Background), bool> _compatible = [];

    private ShapesWorld()
    {
    }

    /// <summary>The world shipped with this assembly.</summary>
    public static ShapesWorld Default => DefaultWorld.Value;

    /// <summary>Spec name (recorded with pretraining runs).</summary>
    public string Name { get; private init; } = "";

    /// <summary>Default image side in pixels.</summary>
    public int ImageSize { get; private init; }

    /// <summary>Factor from a fill colour to its pattern ink.</summary>
    public double InkShade { get; private init; }

    /// <summary>
    /// Smallest RGB distance between anything an object's fill/ink can produce and anything a background can
    /// produce; colour–background pairs closer than this are never rendered (see <see cref="IsCompatible"/>).
    /// </summary>
    public double MinimumContrast { get; private init; }

    /// <summary>Shape categories.</summary>
    public IReadOnlyList<ShapeSpec> Shapes { get; private init; } = [];

    /// <summary>Fill colours.</summary>
    public IReadOnlyList<ColorSpec> Colors { get; private init; } = [];

    /// <summary>Fill patterns.</summary>
    public IReadOnlyList<PatternSpec> Patterns { get; private init; } = [];

    /// <summary>Size classes.</summary>
    public IReadOnlyList<SizeSpec> Sizes { get; private init; } = [];

    /// <summary>Position classes.</summary>
    public IReadOnlyList<PositionSpec> Positions { get; private init; } = [];

    /// <summary>Backgrounds (plain colours and scenes).</summary>
    public IReadOnlyList<BackgroundSpec> Backgrounds { get; private init; } = [];

    /// <summary>Caption rules.</summary>
    public CaptionSpec Captions { get; private init; } = new([""], 1, 1, 1, 1, 1);

    /// <summary>Combinations never rendered in pretraining.</summary>
    public IReadOnlyList<HeldOutCombination> HeldOut { get; private set; } = [];

    /// <summary>The shape named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such shape.</exception>
    public ShapeSpec Shape(string name) => Find(Shapes, s => s.Name, name, "shape");

    /// <summary>The colour named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such colour.</exception>
    public ColorSpec Color(string name) => Find(Colors, s => s.Name, name, "colour");

    /// <summary>The pattern named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such pattern.</exception>
    public PatternSpec Pattern(string name) => Find(Patterns, s => s.Name, name, "pattern");

    /// <summary>The size named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such size.</exception>
    public SizeSpec Size(string name) => Find(Sizes, s => s.Name, name, "size");

    /// <summary>The position named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such position.</exception>
    public PositionSpec Position(string name) => Find(Positions, s => s.Name, name, "position");

    /// <summary>The background named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such background.</exception>
    public BackgroundSpec Background(string name) => Find(Backgrounds, s => s.Name, name, "background");

    /// <summary>
    /// Whether objects of <paramref name="color"/> are drawn on <paramref name="background"/>: every blend of its fill
    /// and ink stays at least <see cref="MinimumContrast"/> away from every blend of the background's colours, so the
    /// object can be told from the background pixel by pixel.
    /// </summary>
    public bool IsCompatible(ColorSpec color, BackgroundSpec background)
    {
        ArgumentNullException.ThrowIfNull(color);
        ArgumentNullException.ThrowIfNull(background);
        return _compatible.TryGetValue((color.Name, background.Name), out bool ok)
            ? ok
            : Contrast(color.Fill, color.Ink, background) >= MinimumContrast;
    }

    /// <summary>Whether any object of <paramref name="scene"/> matches a held-out combination.</summary>
    public bool IsHeldOut(Scene scene)
    {
        ArgumentNullException.ThrowIfNull(scene);
        return scene.Objects.Any(o => HeldOut.Any(h => h.Matches(o, scene.Background)));
    }

    /// <summary>Colour–background pairs that are never rendered because they lack contrast.</summary>
    public IReadOnlyList<(ColorSpec Color, BackgroundSpec Background)> IncompatiblePairs() =>
        [.. from b in Backgrounds from c in Colors where !IsCompatible(c, b) select (c, b)];

    /// <summary>Every caption word the world can produce (prefixes, attribute words and phrases, "a", "an", "next", "to").</summary>
    public IReadOnlyList<string> Vocabulary()
    {
        var words = new SortedSet<string>(StringComparer.Ordinal) { "a", "an", "next", "to" };
        foreach (string text in Captions.Prefixes.Concat(Shapes.Select(s => s.Word)).Concat(Colors.Select(c => c.Word))
                     .Concat(Patterns.Select(p => p.Word)).Concat(Sizes.Select(s => s.Word)).Concat(Positions.Select(p => p.Phrase))
                     .Concat(Backgrounds.Select(b => b.Phrase)))
            foreach (string w in text.Split(' ', StringSplitOptions.RemoveEmptyEntries)) words.Add(w);
        return [.. words];
    }

    /// <summary>Loads and validates a world spec file.</summary>
    /// <exception cref="InvalidShapesSpecException">The file is malformed or inconsistent (the message names the field).</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static ShapesWorld Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"World spec '{path}' does not exist.", path);
        var info = new FileInfo(path);
        if (info.Length > 4 << 20) throw new InvalidShapesSpecException(path, $"{info.Length} bytes is too large for a world spec (limit 4 MiB)");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses and validates a world spec from JSON text; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="InvalidShapesSpecException">The spec is malformed or inconsistent.</exception>
    public static ShapesWorld Parse(string json, string source = "world spec")
    {
        ArgumentNullException.ThrowIfNull(json);
        var reader = new SpecReader(source);
        using var doc = reader.Parse(json);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw reader.Error("the root must be an object");

        double inkShade = reader.Number(root, "inkShade", "$", 0.05, 0.95);
        var shapes = Unique(reader, reader.Array(root, "shapes", "$").Select((e, i) => ReadShape(reader, e, $"$.shapes[{i}]")).ToArray(), s => s.Name, "shapes");
        var colors = Unique(reader, reader.Array(root, "colors", "$").Select((e, i) =>
        {
            string p = $"$.colors[{i}]";
            var fill = reader.Color(e, "rgb", p);
            return new ColorSpec(reader.String(e, "name", p), reader.Word(e, "word", p), fill, ColorGeometry.Scale(fill, inkShade));
        }).ToArray(), c => c.Name, "colors");
        var patterns = Unique(reader, reader.Array(root, "patterns", "$").Select((e, i) =>
        {
            string p = $"$.patterns[{i}]";
            var kind = reader.Enum<PatternKind>(e, "kind", p);
            double period = kind == PatternKind.Solid ? 0 : reader.Number(e, "period", p, 0.05, 1);
            return new PatternSpec(reader.String(e, "name", p), reader.Word(e, "word", p), kind, period);
        }).ToArray(), x => x.Name, "patterns");
        var sizes = Unique(reader, reader.Array(root, "sizes", "$").Select((e, i) =>
            new SizeSpec(reader.String(e, "name", $"$.sizes[{i}]"), reader.Word(e, "word", $"$.sizes[{i}]"), reader.Number(e, "side", $"$.sizes[{i}]", 0.05, 0.9))).ToArray(), x => x.Name, "sizes");
        var positions = Unique(reader, reader.Array(root, "positions", "$").Select((e, i) =>
        {
            string p = $"$.positions[{i}]";
            return new PositionSpec(reader.String(e, "name", p), Phrase(reader, e, "phrase", p), reader.Number(e, "x", p, 0, 1), reader.Number(e, "y", p, 0, 1));
        }).ToArray(), x => x.Name, "positions");
        var backgrounds = Unique(reader, reader.Array(root, "backgrounds", "$").Select((e, i) => ReadBackground(reader, e, $"$.backgrounds[{i}]")).ToArray(), x => x.Name, "backgrounds");

        var c = reader.Object(root, "captions", "$");
        var prefixes = reader.Array(c, "prefixes", "$.captions").Select((e, i) =>
        {
            if (e.ValueKind != JsonValueKind.String) throw reader.Error($"$.captions.prefixes[{i}] must be a string");
            string s = e.GetString()!.Trim();
            if (s.Length > 0 && (s != s.ToLowerInvariant() || s.Contains("  ", StringComparison.Ordinal)))
                throw reader.Error($"$.captions.prefixes[{i}] '{s}' must be lower-case words separated by single spaces");
            return s;
        }).ToArray();
        if (prefixes.Length == 0) throw reader.Error("$.captions.prefixes must list at least one prefix (\"\" for none)");
        var captions = new CaptionSpec(prefixes,
            reader.Number(c, "keepSize", "$.captions", 0, 1), reader.Number(c, "keepColor", "$.captions", 0, 1),
            reader.Number(c, "keepPattern", "$.captions", 0, 1), reader.Number(c, "keepPosition", "$.captions", 0, 1),
            reader.Number(c, "keepBackground", "$.captions", 0, 1));

        var world = new ShapesWorld
        {
            Name = reader.String(root, "name", "$"),
            ImageSize = (int)reader.Number(root, "imageSize", "$", 16, 1024),
            InkShade = inkShade,
            MinimumContrast = reader.Number(root, "minimumContrast", "$", 0, 441),
            Shapes = shapes,
            Colors = colors,
            Patterns = patterns,
            Sizes = sizes,
            Positions = positions,
            Backgrounds = backgrounds,
            Captions = captions,
        };
        foreach (var b in backgrounds)
            foreach (var col in colors)
                world._compatible[(col.Name, b.Name)] = Contrast(col.Fill, col.Ink, b) >= world.MinimumContrast;
        foreach (var b in backgrounds)
            if (!colors.Any(col => world._compatible[(col.Name, b.Name)]))
                throw reader.Error($"background '{b.Name}' has no colour with contrast ≥ {world.MinimumContrast} (every object on it would be invisible to the analyzer)");

        world.HeldOut = reader.Array(root, "heldOut", "$", required: false).Select((e, i) => ReadHeldOut(reader, world, e, $"$.heldOut[{i}]")).ToArray();
        return world;
    }

    private static ShapesWorld LoadEmbedded()
    {
        using var stream = typeof(ShapesWorld).Assembly.GetManifestResourceStream("AttnDreamBooth.Shapes.world.json")
            ?? throw new InvalidOperationException("The embedded world.json is missing from AttnDreamBooth.Shapes.");
        using var text = new StreamReader(stream);
        return Parse(text.ReadToEnd(), "world.json (embedded)");
    }

    private static double Contrast(RgbColor fill, RgbColor ink, BackgroundSpec background)
    {
        double best = double.MaxValue;
        foreach (var (a, b) in background.Segments())
            best = Math.Min(best, ColorGeometry.SegmentDistance(fill, ink, a, b));
        return best;
    }

    private static ShapeSpec ReadShape(SpecReader reader, JsonElement e, string p)
    {
        string path = reader.String(e, "path", p);
        using (var parsed = SKPath.ParseSvgPathData(path))
        {
            if (parsed is null) throw reader.Error($"{p}.path is not valid SVG path data");
            var bounds = parsed.TightBounds;
            if (!(bounds.Width > 0 && bounds.Height > 0)) throw reader.Error($"{p}.path encloses no area");
        }
        return new ShapeSpec(reader.String(e, "name", p), reader.Word(e, "word", p), path, reader.Bool(e, "evenOdd", p, false));
    }

    private static BackgroundSpec ReadBackground(SpecReader reader, JsonElement e, string p)
    {
        var kind = reader.Enum<BackgroundKind>(e, "kind", p);
        var colors = reader.Object(e, "colors", p);
        var roles = BackgroundSpec.RolesOf(kind);
        foreach (var prop in colors.EnumerateObject())
            if (!roles.Contains(prop.Name)) throw reader.Error($"{p}.colors.{prop.Name} is not a colour role of a {kind.ToString().ToLowerInvariant()} background (roles: {string.Join(", ", roles)})");
        var palette = roles.Select(r => new KeyValuePair<string, RgbColor>(r, reader.Color(colors, r, $"{p}.colors"))).ToArray();
        return new BackgroundSpec(reader.String(e, "name", p), Phrase(reader, e, "phrase", p), kind, palette);
    }

    private static HeldOutCombination ReadHeldOut(SpecReader reader, ShapesWorld world, JsonElement e, string p)
    {
        if (e.ValueKind != JsonValueKind.Object) throw reader.Error($"{p} must be an object");
        foreach (var prop in e.EnumerateObject())
            if (prop.Name is not ("shape" or "color" or "pattern" or "background" or "size" or "position"))
                throw reader.Error($"{p}.{prop.Name} is not an attribute (shape, color, pattern, background, size, position)");
        string? Known<T>(string key, IReadOnlyList<T> items, Func<T, string> name)
        {
            string? v = reader.OptionalString(e, key, p);
            if (v is not null && !items.Any(i => name(i) == v))
                throw reader.Error($"{p}.{key} '{v}' is not a {key} of this world ({string.Join(", ", items.Select(name))})");
            return v;
        }
        var h = new HeldOutCombination(Known("shape", world.Shapes, s => s.Name), Known("color", world.Colors, s => s.Name),
            Known("pattern", world.Patterns, s => s.Name), Known("background", world.Backgrounds, s => s.Name),
            Known("size", world.Sizes, s => s.Name), Known("position", world.Positions, s => s.Name));
        if (h.Shape is null && h.Color is null && h.Pattern is null && h.Background is null && h.Size is null && h.Position is null)
            throw reader.Error($"{p} names no attribute (it would hold out everything)");
        bool renderable = world.Backgrounds.Where(b => h.Background is null || b.Name == h.Background)
            .Any(b => world.Colors.Where(c => h.Color is null || c.Name == h.Color).Any(c => world._compatible[(c.Name, b.Name)]));
        if (!renderable) throw reader.Error($"{p} ({h}) can never be rendered: its colour lacks contrast on its background");
        return h;
    }

    private static string Phrase(SpecReader reader, JsonElement e, string name, string p)
    {
        string s = reader.String(e, name, p);
        if (s != s.ToLowerInvariant() || s.Trim() != s || s.Contains("  ", StringComparison.Ordinal))
            throw reader.Error($"{p}.{name} '{s}' must be lower-case words separated by single spaces");
        return s;
    }

    private static IReadOnlyList<T> Unique<T>(SpecReader reader, T[] items, Func<T, string> name, string list)
    {
        if (items.Length == 0) throw reader.Error($"$.{list} must not be empty");
        var dup = items.GroupBy(name).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw reader.Error($"$.{list} names '{dup.Key}' twice");
        return items;
    }

    private static T Find<T>(IReadOnlyList<T> items, Func<T, string> name, string key, string what)
    {
        ArgumentNullException.ThrowIfNull(key);
        foreach (var i in items) if (name(i) == key) return i;
        throw new ArgumentException($"'{key}' is not a {what} of this world; known: {string.Join(", ", items.Select(name))}.", nameof(key));
    }
}
