namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>Pretraining produced a non-finite loss or degenerate latents; the last checkpoint is left as it was.</summary>
public sealed class PretrainingDivergedException : AttnDreamBoothException
{
    /// <summary>Creates the exception with a message saying what diverged and where.</summary>
    public PretrainingDivergedException(string message) : base(message)
    {
    }
}
