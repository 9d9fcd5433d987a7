namespace AttnDreamBooth.Personalization;

/// <summary>A progress report of <see cref="PersonalizedModel.AdaptDecoderAsync"/>, sent after every optimizer step.</summary>
/// <param name="Step">Steps completed (1-based after the first step).</param>
/// <param name="TotalSteps">Steps of the adaptation.</param>
/// <param name="Loss">The step's reconstruction loss (mean absolute plus mean squared pixel error, images in [-1, 1]).</param>
/// <param name="Elapsed">Wall-clock time since the adaptation started.</param>
public sealed record DecoderAdaptationProgress(int Step, int TotalSteps, double Loss, TimeSpan Elapsed)
{
    /// <summary>Fraction of the steps done, in [0, 1].</summary>
    public double Fraction => (double)Step / TotalSteps;
}
