using AttnDreamBooth.Imaging;
using AttnDreamBooth.IO;
using AttnDreamBooth.Training;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// A concept's images, all validated and decoded (upright RGB) before anything else happens, ready to be turned
/// into augmented training tensors. Loading checks every header first (so an oversized or unsupported file is
/// reported before any decoding work), then decodes every image, and reports all rejected images at once.
/// </summary>
internal sealed class ConceptImageSet
{
    private readonly RgbImage[] _images;

    private ConceptImageSet(Concept concept, ConceptImageOptions options, RgbImage[] images)
    {
        Concept = concept;
        Options = options;
        _images = images;
    }

    /// <summary>The concept the images belong to.</summary>
    public Concept Concept { get; }

    /// <summary>The options used to validate and transform the images.</summary>
    public ConceptImageOptions Options { get; }

    /// <summary>The decoded upright images, in the concept's order.</summary>
    public IReadOnlyList<RgbImage> Images => _images;

    /// <summary>Number of images.</summary>
    public int Count => _images.Length;

    /// <summary>Validates and decodes every image of <paramref name="concept"/> with the one image decoder.</summary>
    /// <param name="concept">The concept.</param>
    /// <param name="options">Minimum side, transparency background, resolution and augmentation (default: the defaults).</param>
    /// <param name="limits">The size limits (default: those in force).</param>
    /// <exception cref="InvalidImageException">At least one image is unusable; lists all of them.</exception>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public static ConceptImageSet Load(Concept concept, ConceptImageOptions? options = null, ResourceLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(concept);
        options ??= new ConceptImageOptions();
        options.Validate();
        var decode = DecodeOptions(options, limits ?? ResourceLimits.Current);
        ThrowIfAny(concept.Images.Select(s => Try(() => ImageDecoder.Inspect(s, decode))).ToArray());
        var decoded = concept.Images.Select(s => Try(() => ImageDecoder.Load(s, decode))).ToArray();
        ThrowIfAny(decoded);
        return new ConceptImageSet(concept, options, decoded.Select(d => d.Value!).ToArray());
    }

    /// <summary>Every problem with <paramref name="concept"/>'s images (header checks and full decoding), without
    /// throwing; empty when all images are usable.</summary>
    public static IReadOnlyList<ImageProblem> FindProblems(Concept concept, ConceptImageOptions? options, ResourceLimits limits)
    {
        ArgumentNullException.ThrowIfNull(concept);
        options ??= new ConceptImageOptions();
        options.Validate();
        var decode = DecodeOptions(options, limits);
        return concept.Images
            .Select(s => Try(() => ImageDecoder.Load(s, decode)))
            .SelectMany(r => r.Problems)
            .ToArray();
    }

    /// <summary>What the decoder needs of the concept's image settings and the limits.</summary>
    internal static ImageDecodeOptions DecodeOptions(ConceptImageOptions options, ResourceLimits limits) =>
        ImageDecodeOptions.From(limits) with { MinimumSide = options.MinimumSide, AlphaBackground = options.AlphaBackground };

    /// <summary>Image <paramref name="index"/> augmented with <paramref name="random"/> (null: no augmentation, center
    /// crop) as a float32 tensor [3, R, R] in [−1, 1] on <paramref name="device"/>.</summary>
    public torch.Tensor GetSample(int index, SeededRandom? random, torch.Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        var image = ConceptImageTransform.Augment(_images[index], Options.Resolution, Options.Augmentation, random);
        return ConceptImageTransform.ToTensor(image, device);
    }

    /// <summary>The samples of <paramref name="indices"/> stacked into [B, 3, R, R], augmented in index order.</summary>
    public torch.Tensor GetBatch(IReadOnlyList<int> indices, SeededRandom? random, torch.Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (indices.Count == 0) throw new ArgumentException("A batch needs at least one index.", nameof(indices));
        using var scope = torch.NewDisposeScope();
        var samples = indices.Select(i => GetSample(i, random)).ToArray();
        var batch = torch.stack(samples);
        if (device is not null && device.type != DeviceType.CPU) batch = batch.to(device);
        return batch.MoveToOuterDisposeScope();
    }

    private static (T? Value, ImageProblem[] Problems) Try<T>(Func<T> load) where T : class
    {
        try
        {
            return (load(), []);
        }
        catch (InvalidImageException e)
        {
            return (null, e.Problems.ToArray());
        }
    }

    private static void ThrowIfAny<T>((T? Value, ImageProblem[] Problems)[] results) where T : class
    {
        var problems = results.SelectMany(r => r.Problems).ToArray();
        if (problems.Length > 0) throw new InvalidImageException(problems);
    }
}
