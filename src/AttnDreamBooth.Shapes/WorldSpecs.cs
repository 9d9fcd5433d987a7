using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>A shape category: its caption word and its outline as SVG path data (any coordinates; the renderer fits its tight bounds into the object's box).</summary>
/// <param name="Name">Identifier used in specs and scenes.</param>
/// <param name="Word">The caption word (a single CLIP token).</param>
/// <param name="Path">SVG path data of the outline.</param>
/// <param name="EvenOdd">Fill with the even-odd rule (holes, as in a ring) instead of non-zero winding.</param>
public sealed record ShapeSpec(string Name, string Word, string Path, bool EvenOdd);

/// <summary>A named fill colour and the darker "ink" its patterns are drawn with.</summary>
/// <param name="Name">Identifier used in specs and scenes.</param>
/// <param name="Word">The caption word (a single CLIP token).</param>
/// <param name="Fill">The fill colour.</param>
/// <param name="Ink">The pattern colour (the fill scaled by the world's ink shade).</param>
public sealed record ColorSpec(string Name, string Word, RgbColor Fill, RgbColor Ink);

/// <summary>How a pattern lays its ink over the fill.</summary>
public enum PatternKind
{
    /// <summary>Fill only.</summary>
    Solid,

    /// <summary>Horizontal stripes, half a period of ink per period.</summary>
    Stripes,

    /// <summary>A square grid of round dots, one per period cell.</summary>
    Dots,

    /// <summary>A checkerboard whose cells are half a period.</summary>
    Checker,
}

/// <summary>A fill pattern.</summary>
/// <param name="Name">Identifier used in specs and scenes.</param>
/// <param name="Word">The caption word (a single CLIP token).</param>
/// <param name="Kind">How the ink is laid out.</param>
/// <param name="Period">The repeat length as a fraction of the object's side (ignored for solid).</param>
public sealed record PatternSpec(string Name, string Word, PatternKind Kind, double Period);

/// <summary>An object size class.</summary>
/// <param name="Name">Identifier used in specs and scenes.</param>
/// <param name="Word">The caption word (a single CLIP token).</param>
/// <param name="Side">The longer side of the object's bounds as a fraction of the image side.</param>
public sealed record SizeSpec(string Name, string Word, double Side);

/// <summary>A position class: where the centre of the object's bounds sits.</summary>
/// <param name="Name">Identifier used in specs and scenes.</param>
/// <param name="Phrase">The caption phrase, e.g. "on the left".</param>
/// <param name="X">Horizontal anchor as a fraction of the image width.</param>
/// <param name="Y">Vertical anchor as a fraction of the image height.</param>
public sealed record PositionSpec(string Name, string Phrase, double X, double Y);

/// <summary>How a background is painted.</summary>
public enum BackgroundKind
{
    /// <summary>One flat colour (role <c>base</c>).</summary>
    Plain,

    /// <summary>Sky, a wavy snow ground and falling flakes (roles <c>sky</c>, <c>ground</c>, <c>flake</c>).</summary>
    Snow,

    /// <summary>A dark sky with stars and a crescent moon (roles <c>sky</c>, <c>star</c>, <c>moon</c>).</summary>
    Night,

    /// <summary>Sky over a lawn with grass blades (roles <c>sky</c>, <c>grass</c>, <c>blade</c>).</summary>
    Grass,

    /// <summary>Sky, a sea band with a wavy shore and sand (roles <c>sky</c>, <c>sea</c>, <c>sand</c>).</summary>
    Beach,
}

/// <summary>A background: a plain colour or a procedurally drawn scene.</summary>
/// <param name="Name">Identifier used in specs and scenes.</param>
/// <param name="Phrase">The caption phrase, e.g. "in the snow".</param>
/// <param name="Kind">How it is painted.</param>
/// <param name="Palette">Its colours by role, in spec order; every painted pixel is one of them or a blend of two.</param>
public sealed record BackgroundSpec(string Name, string Phrase, BackgroundKind Kind, IReadOnlyList<KeyValuePair<string, RgbColor>> Palette)
{
    /// <summary>The colour of <paramref name="role"/>.</summary>
    /// <exception cref="KeyNotFoundException">The background has no such role.</exception>
    public RgbColor this[string role] =>
        Palette.FirstOrDefault(p => p.Key == role) is { Key: not null } hit ? hit.Value
            : throw new KeyNotFoundException($"Background '{Name}' has no colour role '{role}'.");

    /// <summary>
    /// The pairs of roles whose colours meet in the painting (so anti-aliasing blends them); blends of colours that
    /// never touch (e.g. sky and sand on a beach) do not occur.
    /// </summary>
    public static IReadOnlyList<(string A, string B)> BlendsOf(BackgroundKind kind) => kind switch
    {
        BackgroundKind.Plain => [],
        BackgroundKind.Snow => [("sky", "ground"), ("sky", "flake"), ("ground", "flake")],
        BackgroundKind.Night => [("sky", "star"), ("sky", "moon")],
        BackgroundKind.Grass => [("sky", "grass"), ("sky", "blade"), ("grass", "blade")],
        BackgroundKind.Beach => [("sky", "sea"), ("sea", "sand")],
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Every colour segment this background's pixels lie on: each palette colour alone and each blend pair.</summary>
    public IReadOnlyList<(RgbColor A, RgbColor B)> Segments() =>
        [.. Palette.Select(p => (p.Value, p.Value)), .. BlendsOf(Kind).Select(b => (this[b.A], this[b.B]))];

    /// <summary>The roles that cover a large part of every picture of this kind (objects cannot hide them), used to tell apart backgrounds whose colours overlap (a white background and snow's ground).</summary>
    public static IReadOnlyList<string> MajorRolesOf(BackgroundKind kind) => kind switch
    {
        BackgroundKind.Plain => ["base"],
        BackgroundKind.Snow => ["sky", "ground"],
        BackgroundKind.Night => ["sky"],
        BackgroundKind.Grass => ["sky", "grass"],
        BackgroundKind.Beach => ["sky", "sea", "sand"],
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The roles each kind needs.</summary>
    public static IReadOnlyList<string> RolesOf(BackgroundKind kind) => kind switch
    {
        BackgroundKind.Plain => ["base"],
        BackgroundKind.Snow => ["sky", "ground", "flake"],
        BackgroundKind.Night => ["sky", "star", "moon"],
        BackgroundKind.Grass => ["sky", "grass", "blade"],
        BackgroundKind.Beach => ["sky", "sea", "sand"],
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}

/// <summary>How captions are built: optional prefixes and the probability of keeping each attribute's words.</summary>
/// <param name="Prefixes">Prefixes chosen uniformly ("" for none), e.g. "a photo of".</param>
/// <param name="KeepSize">Probability that the size word is kept.</param>
/// <param name="KeepColor">Probability that the colour word is kept.</param>
/// <param name="KeepPattern">Probability that the pattern word is kept.</param>
/// <param name="KeepPosition">Probability that the position phrase is kept.</param>
/// <param name="KeepBackground">Probability that the background phrase is kept.</param>
public sealed record CaptionSpec(IReadOnlyList<string> Prefixes, double KeepSize, double KeepColor, double KeepPattern, double KeepPosition, double KeepBackground);

/// <summary>
/// An attribute combination never rendered in pretraining: an object matches when every attribute given here
/// equals the object's (null attributes match anything).
/// </summary>
/// <param name="Shape">Shape name or null.</param>
/// <param name="Color">Colour name or null.</param>
/// <param name="Pattern">Pattern name or null.</param>
/// <param name="Background">Background name or null.</param>
/// <param name="Size">Size name or null.</param>
/// <param name="Position">Position name or null.</param>
public sealed record HeldOutCombination(string? Shape, string? Color, string? Pattern, string? Background, string? Size, string? Position)
{
    /// <summary>Whether <paramref name="obj"/> on <paramref name="background"/> has every attribute of this combination.</summary>
    public bool Matches(SceneObject obj, BackgroundSpec background)
    {
        ArgumentNullException.ThrowIfNull(obj);
        ArgumentNullException.ThrowIfNull(background);
        return (Shape is null || Shape == obj.Shape.Name)
            && (Color is null || Color == obj.Color.Name)
            && (Pattern is null || Pattern == obj.Pattern.Name)
            && (Background is null || Background == background.Name)
            && (Size is null || Size == obj.Size.Name)
            && (Position is null || Position == obj.Position.Name);
    }

    /// <inheritdoc />
    public override string ToString() =>
        string.Join(" ", new[] { ("shape", Shape), ("color", Color), ("pattern", Pattern), ("background", Background), ("size", Size), ("position", Position) }
            .Where(p => p.Item2 is not null).Select(p => $"{p.Item1}={p.Item2}"));
}
