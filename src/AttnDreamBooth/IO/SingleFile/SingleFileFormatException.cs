namespace AttnDreamBooth.IO.SingleFile;

/// <summary>A single-file checkpoint does not match the key layout its configuration implies (unknown keys, missing
/// blocks, wrong shapes, ambiguous family).</summary>
public sealed class SingleFileFormatException : AttnDreamBoothException
{
    /// <summary>Creates the exception for <paramref name="subject"/> (a file or key).</summary>
    public SingleFileFormatException(string subject, string problem)
        : base($"{subject}: {problem}")
    {
        Subject = subject;
        Problem = problem;
    }

    /// <summary>The file or key the problem is about.</summary>
    public string Subject { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }
}
