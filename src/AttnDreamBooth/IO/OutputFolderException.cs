namespace AttnDreamBooth.IO;

/// <summary>
/// An output or checkpoint folder cannot be used: it holds another run's concept or checkpoints (pass the explicit
/// overwrite option to replace them), it is not writable, or its disk lacks the space the run needs. Raised before
/// training starts, so no work is lost.
/// </summary>
public sealed class OutputFolderException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public OutputFolderException(string folder, string problem, Exception? inner = null)
        : base($"'{folder}': {problem}", inner)
    {
        Folder = folder;
        Problem = problem;
    }

    /// <summary>The folder at fault.</summary>
    public string Folder { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }
}
