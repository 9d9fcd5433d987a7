namespace AttnDreamBooth.Personalization;

/// <summary>Progress of preparing the prior-preservation class images: sent after every generated batch, or once when
/// the images come from the cache.</summary>
/// <param name="Completed">Class images ready so far (generated, or reused from an interrupted run with the same settings).</param>
/// <param name="Total">Class images needed.</param>
/// <param name="FromCache">True when every image was reused from the cache folder and nothing was generated.</param>
/// <param name="Elapsed">Wall-clock time since preparation started.</param>
/// <param name="EstimatedRemaining">Estimated time to generate the rest, or null before it can be estimated.</param>
public sealed record ClassImageProgress(int Completed, int Total, bool FromCache, TimeSpan Elapsed, TimeSpan? EstimatedRemaining)
{
    /// <summary>Fraction of the images ready, in [0, 1].</summary>
    public double Fraction => Total == 0 ? 1.0 : (double)Completed / Total;
}
