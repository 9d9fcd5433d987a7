namespace AttnDreamBooth.Personalization;

/// <summary>A concept passed validation but copying its weights into the pipeline failed part-way (an I/O error, or
/// the files changed on disk between validation and copying). The pipeline's U-Net is then in an undefined state and
/// the pipeline refuses further work; build a new one.</summary>
public sealed class ConceptLoadFailedException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    public ConceptLoadFailedException(string folder, Exception inner)
        : base($"Loading the concept '{folder}' failed while its weights were being copied ({inner.Message}); the pipeline's U-Net is now in an undefined state. Build a new pipeline.", inner)
    {
        Folder = folder;
    }

    /// <summary>The concept folder.</summary>
    public string Folder { get; }
}
