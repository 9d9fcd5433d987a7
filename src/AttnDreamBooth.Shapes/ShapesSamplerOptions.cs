namespace AttnDreamBooth.Shapes;

/// <summary>What the sampler does with the world's held-out combinations.</summary>
public enum HeldOutPolicy
{
    /// <summary>Never produce a scene with a held-out combination (pretraining).</summary>
    Exclude,

    /// <summary>Produce only single-object scenes that contain a held-out combination (generalization tests).</summary>
    Only,
}

/// <summary>Options of <see cref="ShapesSampler"/>.</summary>
public sealed record ShapesSamplerOptions
{
    /// <summary>Image side in pixels; null uses the world's <see cref="ShapesWorld.ImageSize"/>.</summary>
    public int? ImageSize { get; init; }

    /// <summary>Probability that a sample's caption is empty (for classifier-free guidance), e.g. 0.1.</summary>
    public double EmptyCaptionProbability { get; init; }

    /// <summary>Probability that a scene has a second object ("next to"); both objects are then of the smallest size, one on the left and one on the right.</summary>
    public double SecondObjectProbability { get; init; } = 0.2;

    /// <summary>Held-out handling (default: excluded).</summary>
    public HeldOutPolicy HeldOut { get; init; } = HeldOutPolicy.Exclude;

    /// <summary>Random jitter of an object's centre around its position anchor, fraction of the image side.</summary>
    public double PositionJitter { get; init; } = 0.03;

    /// <summary>Random relative jitter of an object's side around its size class.</summary>
    public double SizeJitter { get; init; } = 0.08;
}
