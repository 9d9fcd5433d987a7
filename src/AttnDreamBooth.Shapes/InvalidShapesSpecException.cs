namespace AttnDreamBooth.Shapes;

/// <summary>
/// A Shapes world spec, concept spec or scene is malformed or inconsistent (unknown names, missing fields,
/// colours that cannot be told apart from a background, …). <see cref="Source"/> names the file or stream.
/// </summary>
public sealed class InvalidShapesSpecException : AttnDreamBoothException
{
    /// <summary>Creates the exception for a problem found in <paramref name="source"/>.</summary>
    public InvalidShapesSpecException(string source, string problem, Exception? inner = null)
        : base($"{source}: {problem}", inner)
    {
        Source = source;
        Problem = problem;
    }

    /// <summary>The file path or stream name of the spec.</summary>
    public new string Source { get; }

    /// <summary>What is wrong, without the source prefix.</summary>
    public string Problem { get; }
}
