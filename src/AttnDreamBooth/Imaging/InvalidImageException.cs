namespace AttnDreamBooth.Imaging;

/// <summary>
/// One or more images are unusable (unreadable, corrupt, unsupported, empty, too small, or beyond the size limits).
/// Thrown by the one image decoder that concept photos, class images and evaluation images all go through: before any
/// training starts for a concept's photos, by <see cref="RgbImage.Load(string)"/> for one file. <see cref="Problems"/>
/// lists every refused image, <see cref="ImageName"/> names the first.
/// </summary>
public sealed class InvalidImageException : AttnDreamBoothException
{
    /// <summary>Creates the exception for one image.</summary>
    internal InvalidImageException(string imageName, ImageProblemKind kind, string detail, Exception? inner = null)
        : this([new ImageProblem(imageName, kind, detail)], inner)
    {
    }

    /// <summary>Creates the exception for several images (at least one).</summary>
    internal InvalidImageException(IReadOnlyList<ImageProblem> problems, Exception? inner = null)
        : base(BuildMessage(problems), inner)
    {
        Problems = problems;
    }

    /// <summary>Every refused image.</summary>
    public IReadOnlyList<ImageProblem> Problems { get; }

    /// <summary>The first refused image's file path or stream name.</summary>
    public string ImageName => Problems[0].ImageName;

    /// <summary>The first refused image's problem.</summary>
    internal ImageProblemKind Kind => Problems[0].Kind;

    private static string BuildMessage(IReadOnlyList<ImageProblem> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        if (problems.Count == 0) throw new ArgumentException("At least one problem is required.", nameof(problems));
        return problems.Count == 1
            ? $"Image {problems[0]}"
            : $"{problems.Count} images are unusable:{Environment.NewLine}" + string.Join(Environment.NewLine, problems.Select(p => "  " + p));
    }
}
