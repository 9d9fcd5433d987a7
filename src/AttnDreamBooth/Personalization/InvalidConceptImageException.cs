namespace AttnDreamBooth.Personalization;

/// <summary>
/// One or more concept images are unusable (corrupt, unsupported, empty, too small, or beyond the pixel cap).
/// Thrown before any training starts; <see cref="Problems"/> lists every rejected image, <see cref="ImageName"/>
/// and <see cref="Kind"/> describe the first.
/// </summary>
public sealed class InvalidConceptImageException : AttnDreamBoothException
{
    /// <summary>Creates the exception for one image.</summary>
    public InvalidConceptImageException(string imageName, ConceptImageProblemKind kind, string detail, Exception? inner = null)
        : this([new ConceptImageProblem(imageName, kind, detail)], inner)
    {
    }

    /// <summary>Creates the exception for several images (at least one).</summary>
    public InvalidConceptImageException(IReadOnlyList<ConceptImageProblem> problems, Exception? inner = null)
        : base(BuildMessage(problems), inner)
    {
        Problems = problems;
    }

    /// <summary>Every rejected image.</summary>
    public IReadOnlyList<ConceptImageProblem> Problems { get; }

    /// <summary>The first rejected image's file path or stream name.</summary>
    public string ImageName => Problems[0].ImageName;

    /// <summary>The first rejected image's problem.</summary>
    public ConceptImageProblemKind Kind => Problems[0].Kind;

    private static string BuildMessage(IReadOnlyList<ConceptImageProblem> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        if (problems.Count == 0) throw new ArgumentException("At least one problem is required.", nameof(problems));
        return problems.Count == 1
            ? $"Concept image {problems[0]}"
            : $"{problems.Count} concept images are unusable:{Environment.NewLine}" + string.Join(Environment.NewLine, problems.Select(p => "  " + p));
    }
}
