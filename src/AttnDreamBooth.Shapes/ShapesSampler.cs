
namespace AttnDreamBooth.Shapes;

/// <summary>
/// A deterministic, index-addressable dataset over a <see cref="ShapesWorld"/>: <c>Sample(i)</c> depends only on
/// (world, seed, options, i), so any worker can produce any sample in any order and a resumed run sees the same
/// data. Colours are only drawn on backgrounds they contrast with; held-out combinations are excluded (or, with
/// <see cref="HeldOutPolicy.Only"/>, exclusively produced). Thread-safe.
/// </summary>
public sealed class ShapesSampler
{
    private const int MaxAttempts = 1000;
    private readonly ShapesWorld _world;
    private readonly long _seed;
    private readonly PositionSpec? _pairLeft, _pairRight;
    private readonly SizeSpec _pairSize;

    /// <summary>Creates a sampler.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="ArgumentException">Held-out-only sampling on a world without held-out combinations.</exception>
    public ShapesSampler(ShapesWorld world, long seed, ShapesSamplerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(world);
        options ??= new ShapesSamplerOptions();
        if (options.ImageSize is { } s && (s < 8 || s > ShapesRenderer.MaxSize))
            throw new ArgumentOutOfRangeException(nameof(options), s, $"ImageSize must be in [8, {ShapesRenderer.MaxSize}].");
        CheckProbability(options.EmptyCaptionProbability, nameof(options.EmptyCaptionProbability));
        CheckProbability(options.SecondObjectProbability, nameof(options.SecondObjectProbability));
        if (!(options.PositionJitter >= 0 && options.PositionJitter <= 0.2)) throw new ArgumentOutOfRangeException(nameof(options), options.PositionJitter, "PositionJitter must be in [0, 0.2].");
        if (!(options.SizeJitter >= 0 && options.SizeJitter <= 0.3)) throw new ArgumentOutOfRangeException(nameof(options), options.SizeJitter, "SizeJitter must be in [0, 0.3].");
        if (options.HeldOut == HeldOutPolicy.Only && world.HeldOut.Count == 0)
            throw new ArgumentException("HeldOutPolicy.Only needs a world with held-out combinations; this one has none.", nameof(options));
        _world = world;
        _seed = seed;
        Options = options;
        _pairSize = world.Sizes.MinBy(z => z.Side)!;
        var byX = world.Positions.OrderBy(p => p.X).ToArray();
        if (byX[^1].X - byX[0].X >= 1.3 * _pairSize.Side) (_pairLeft, _pairRight) = (byX[0], byX[^1]);
    }

    /// <summary>The options in use.</summary>
    public ShapesSamplerOptions Options { get; }

    /// <summary>The image side of the samples.</summary>
    public int ImageSize => Options.ImageSize ?? _world.ImageSize;

    /// <summary>Renders sample <paramref name="index"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative.</exception>
    public ShapesSample Sample(long index)
    {
        var (scene, caption) = Describe(index);
        var r = ShapesRenderer.Render(scene, ImageSize);
        return new ShapesSample(index, r.Image, caption, scene, r.Masks);
    }

    /// <summary>The scene and caption of sample <paramref name="index"/> without rendering it (cheap; e.g. for prompt lists).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative.</exception>
    public (Scene Scene, string Caption) Describe(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var rng = new WorldRandom(Mix(_seed, index));
        for (int attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var scene = Options.HeldOut == HeldOutPolicy.Only ? DrawHeldOutScene(rng) : DrawScene(rng);
            if (scene is null) continue;
            bool heldOut = _world.IsHeldOut(scene);
            if (Options.HeldOut == HeldOutPolicy.Exclude && heldOut) continue;
            if (Options.HeldOut == HeldOutPolicy.Only && !heldOut) continue;
            bool empty = rng.NextBool(Options.EmptyCaptionProbability);
            string caption = ShapesCaptions.Describe(scene, _world.Captions, rng);
            return (scene, empty ? "" : caption);
        }
        throw new InvalidOperationException($"No admissible scene found for sample {index} in {MaxAttempts} attempts: the held-out list or contrast rules of world '{_world.Name}' exclude (almost) everything.");
    }

    private Scene? DrawScene(WorldRandom rng)
    {
        var background = Pick(rng, _world.Backgrounds);
        long backgroundSeed = unchecked((long)rng.NextUInt64());
        bool pair = _pairLeft is not null && rng.NextBool(Options.SecondObjectProbability);
        if (!pair) return new Scene(background, backgroundSeed, [DrawObject(rng, background, null, null, null, null, null, null)]);
        bool firstLeft = rng.NextBool(0.5);
        var first = DrawObject(rng, background, null, null, null, _pairSize, firstLeft ? _pairLeft : _pairRight, null);
        var second = DrawObject(rng, background, null, null, null, _pairSize, firstLeft ? _pairRight : _pairLeft, first.Shape);
        return new Scene(background, backgroundSeed, [first, second]);
    }

    private Scene? DrawHeldOutScene(WorldRandom rng)
    {
        var h = Pick(rng, _world.HeldOut);
        var background = h.Background is null ? Pick(rng, _world.Backgrounds) : _world.Background(h.Background);
        var color = h.Color is null ? null : _world.Color(h.Color);
        if (color is not null && !_world.IsCompatible(color, background)) return null;
        long backgroundSeed = unchecked((long)rng.NextUInt64());
        var obj = DrawObject(rng, background,
            h.Shape is null ? null : _world.Shape(h.Shape), color, h.Pattern is null ? null : _world.Pattern(h.Pattern),
            h.Size is null ? null : _world.Size(h.Size), h.Position is null ? null : _world.Position(h.Position), null);
        return new Scene(background, backgroundSeed, [obj]);
    }

    private SceneObject DrawObject(WorldRandom rng, BackgroundSpec background, ShapeSpec? shape, ColorSpec? color, PatternSpec? pattern, SizeSpec? size, PositionSpec? position, ShapeSpec? avoidShape)
    {
        if (shape is null)
        {
            var shapes = avoidShape is null || _world.Shapes.Count < 2 ? _world.Shapes : [.. _world.Shapes.Where(s => s != avoidShape)];
            shape = Pick(rng, shapes);
        }
        color ??= Pick(rng, [.. _world.Colors.Where(c => _world.IsCompatible(c, background))]);
        pattern ??= Pick(rng, _world.Patterns);
        size ??= Pick(rng, _world.Sizes);
        position ??= Pick(rng, _world.Positions);
        double side = size.Side * (1 + rng.NextDouble(-Options.SizeJitter, Options.SizeJitter));
        double j = Options.PositionJitter;
        const double margin = 0.02;
        double half = side / 2;
        double cx = Math.Clamp(position.X + rng.NextDouble(-j, j), margin + half, 1 - margin - half);
        double cy = Math.Clamp(position.Y + rng.NextDouble(-j, j), margin + half, 1 - margin - half);
        return new SceneObject(shape, color, pattern, size, position, cx, cy, side);
    }

    private static T Pick<T>(WorldRandom rng, IReadOnlyList<T> items) => items[rng.NextInt(items.Count)];

    /// <summary>One well-mixed 64-bit seed per (seed, index), so neighbouring indices give unrelated streams.</summary>
    internal static long Mix(long seed, long index)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)index * 0xD1B54A32D192ED03UL + 0x632BE59BD9B4E019UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return unchecked((long)(z ^ (z >> 31)));
    }

    private static void CheckProbability(double p, string name)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(name, p, $"{name} must be in [0, 1].");
    }
}
