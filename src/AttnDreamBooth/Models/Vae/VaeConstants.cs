namespace AttnDreamBooth.Models.Vae;

/// <summary>Numbers of the reference VAE that are not in its config.</summary>
internal static class VaeConstants
{
    /// <summary>Every VAE GroupNorm (resnets, mid-block attention, conv_norm_out) uses 1e-6, not the UNet's 1e-5.</summary>
    public const double NormEps = 1e-6;

    /// <summary>The clamp diffusers applies to the posterior's log-variance.</summary>
    public const double LogVarMin = -30.0, LogVarMax = 20.0;
}
