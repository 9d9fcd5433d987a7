using System.Text.Json;
using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>How a concept's "photos" are taken: how many, on which backgrounds, where and how big (cycled in order, with the sampler's jitter).</summary>
/// <param name="Count">Number of photos.</param>
/// <param name="Seed">Seed of the jitter and the background details.</param>
/// <param name="Backgrounds">Backgrounds, cycled.</param>
/// <param name="Positions">Positions, cycled.</param>
/// <param name="Sizes">Sizes, cycled.</param>
public sealed record ConceptPhotoPlan(int Count, long Seed, IReadOnlyList<BackgroundSpec> Backgrounds, IReadOnlyList<PositionSpec> Positions, IReadOnlyList<SizeSpec> Sizes);

/// <summary>
/// A personalization subject: a shape category of the world with an appearance no pretraining image has (its own
/// two pattern colours, an outline, an emblem), and the plan of its photos. Loaded from JSON (see samples/concepts).
/// </summary>
/// <param name="Name">Identifier (file name without extension by convention).</param>
/// <param name="Description">One human sentence.</param>
/// <param name="Category">The shape category (the class word in "a [V] star").</param>
/// <param name="Appearance">The look.</param>
/// <param name="Photos">The photo plan.</param>
/// <param name="IsTuning">Whether this is the concept hyper-parameters may be tuned on (the others are for evaluation only).</param>
public sealed record ConceptSpec(string Name, string Description, ShapeSpec Category, ConceptAppearance Appearance, ConceptPhotoPlan Photos, bool IsTuning)
{
    /// <summary>Loads a concept spec file against <paramref name="world"/>.</summary>
    /// <exception cref="InvalidShapesSpecException">Malformed, unknown names, an appearance pretraining already shows, or a photo background it does not contrast with.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static ConceptSpec Load(string path, ShapesWorld world)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Concept spec '{path}' does not exist.", path);
        if (new FileInfo(path).Length > 1 << 20) throw new InvalidShapesSpecException(path, "too large for a concept spec (limit 1 MiB)");
        return Parse(File.ReadAllText(path), world, path);
    }

    /// <summary>Loads every <c>*.json</c> concept spec of a folder, sorted by file name.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidShapesSpecException">A spec is invalid.</exception>
    public static IReadOnlyList<ConceptSpec> LoadFolder(string folder, ShapesWorld world)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Concept folder '{folder}' does not exist.");
        return [.. Directory.GetFiles(folder, "*.json").Order(StringComparer.Ordinal).Select(f => Load(f, world))];
    }

    /// <summary>Parses a concept spec; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="InvalidShapesSpecException">See <see cref="Load"/>.</exception>
    public static ConceptSpec Parse(string json, ShapesWorld world, string source = "concept spec")
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(world);
        var reader = new SpecReader(source);
        using var doc = reader.Parse(json);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw reader.Error("the root must be an object");
        T Known<T>(string? name, Func<string, T> lookup, string path)
        {
            try { return lookup(name!); }
            catch (ArgumentException e) { throw reader.Error($"{path}: {e.Message}", e); }
        }

        string name = reader.String(root, "name", "$");
        var category = Known(reader.String(root, "category", "$"), world.Shape, "$.category");
        var a = reader.Object(root, "appearance", "$");
        string? emblemName = reader.OptionalString(a, "emblem", "$.appearance");
        var appearance = new ConceptAppearance(
            reader.Color(a, "primary", "$.appearance"),
            reader.Color(a, "secondary", "$.appearance"),
            Known(reader.String(a, "pattern", "$.appearance"), world.Pattern, "$.appearance.pattern"),
            reader.Color(a, "outline", "$.appearance"),
            reader.Number(a, "outlineWidth", "$.appearance", 0, 0.25),
            emblemName is null ? null : Known(emblemName, world.Shape, "$.appearance.emblem"),
            emblemName is null ? RgbColor.White : reader.Color(a, "emblemColor", "$.appearance"),
            emblemName is null ? 0 : reader.Number(a, "emblemSize", "$.appearance", 0.1, 0.5));

        var p = reader.Object(root, "photos", "$");
        var backgrounds = reader.Array(p, "backgrounds", "$.photos").Select((e, i) => Known(e.GetString(), world.Background, $"$.photos.backgrounds[{i}]")).ToArray();
        var positions = reader.Array(p, "positions", "$.photos").Select((e, i) => Known(e.GetString(), world.Position, $"$.photos.positions[{i}]")).ToArray();
        var sizes = reader.Array(p, "sizes", "$.photos").Select((e, i) => Known(e.GetString(), world.Size, $"$.photos.sizes[{i}]")).ToArray();
        if (backgrounds.Length == 0 || positions.Length == 0 || sizes.Length == 0)
            throw reader.Error("$.photos needs at least one background, position and size");
        var photos = new ConceptPhotoPlan((int)reader.Number(p, "count", "$.photos", 1, 100), (long)reader.Number(p, "seed", "$.photos", 0, int.MaxValue), backgrounds, positions, sizes);

        var spec = new ConceptSpec(name, reader.String(root, "description", "$"), category, appearance, photos, reader.Bool(root, "tuning", "$", false));
        if (spec.PretrainingLookalike(world) is { } twin)
            throw reader.Error($"$.appearance is what pretraining already shows ({twin}); give the concept an outline, an emblem or two colours of its own");
        foreach (var b in backgrounds)
            if (spec.WeakestContrast(b) is var (role, contrast) && contrast < world.MinimumContrast)
                throw reader.Error($"$.photos.backgrounds: the {role} colour lacks contrast on '{b.Name}' ({contrast:F0} < {world.MinimumContrast}); the concept would blend into it");
        return spec;
    }

    /// <summary>Whether every colour of the concept that can border the background keeps the world's minimum contrast to
    /// it (so the analyzer can separate the concept from that background pixel by pixel).</summary>
    public bool ContrastsWith(BackgroundSpec background, ShapesWorld world)
    {
        ArgumentNullException.ThrowIfNull(background);
        ArgumentNullException.ThrowIfNull(world);
        return WeakestContrast(background).Contrast >= world.MinimumContrast;
    }

    private (string Role, double Contrast) WeakestContrast(BackgroundSpec background) =>
        TouchingColors()
            .Select(c => (c.Role, Contrast: background.Segments().Min(s => ColorGeometry.SegmentDistance(c.Color, c.Color, s.A, s.B))))
            .MinBy(c => c.Contrast);

    /// <summary>The concept as a scene object of the given size and geometry (its nominal colour is the world colour nearest its primary).</summary>
    public SceneObject Object(ShapesWorld world, SizeSpec size, PositionSpec position, double centerX, double centerY, double side)
    {
        ArgumentNullException.ThrowIfNull(world);
        var nearest = world.Colors.MinBy(c => ColorGeometry.Distance(c.Fill, Appearance.Primary))!;
        return new SceneObject(Category, nearest, Appearance.Pattern, size, position, centerX, centerY, side) { Concept = Appearance };
    }

    /// <summary>The scene of photo <paramref name="index"/> (0-based) of the plan: background, position and size cycled, geometry jittered by the plan's seed.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative.</exception>
    public Scene PhotoScene(ShapesWorld world, int index)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var rng = new WorldRandom(ShapesSampler.Mix(Photos.Seed, index));
        var background = Photos.Backgrounds[index % Photos.Backgrounds.Count];
        var position = Photos.Positions[index % Photos.Positions.Count];
        var size = Photos.Sizes[index % Photos.Sizes.Count];
        double side = size.Side * (1 + rng.NextDouble(-0.06, 0.06));
        double half = side / 2, margin = 0.02;
        double cx = Math.Clamp(position.X + rng.NextDouble(-0.03, 0.03), margin + half, 1 - margin - half);
        double cy = Math.Clamp(position.Y + rng.NextDouble(-0.03, 0.03), margin + half, 1 - margin - half);
        return new Scene(background, unchecked((long)rng.NextUInt64()), [Object(world, size, position, cx, cy, side)]);
    }

    /// <summary>Renders the plan's photos.</summary>
    public IReadOnlyList<ShapesRendering> RenderPhotos(ShapesWorld world, int size = 64) =>
        [.. Enumerable.Range(0, Photos.Count).Select(i => ShapesRenderer.Render(PhotoScene(world, i), size))];

    /// <summary>Colours that can border the background: the outline if there is one, else the two pattern colours.</summary>
    private IEnumerable<(string Role, RgbColor Color)> TouchingColors()
    {
        if (Appearance.OutlineWidth > 0) yield return ("outline", Appearance.Outline);
        yield return ("primary", Appearance.Primary);
        if (Appearance.Pattern.Kind != PatternKind.Solid) yield return ("secondary", Appearance.Secondary);
    }

    /// <summary>A world colour/pattern that looks like this concept, or null when the concept is new to pretraining.</summary>
    private string? PretrainingLookalike(ShapesWorld world)
    {
        if (Appearance.OutlineWidth > 0 || Appearance.Emblem is not null) return null;
        const double same = 30;
        foreach (var c in world.Colors)
        {
            if (ColorGeometry.Distance(c.Fill, Appearance.Primary) > same) continue;
            if (Appearance.Pattern.Kind == PatternKind.Solid || ColorGeometry.Distance(c.Ink, Appearance.Secondary) <= same)
                return $"a {c.Name} {Appearance.Pattern.Name} object";
        }
        return null;
    }
}
