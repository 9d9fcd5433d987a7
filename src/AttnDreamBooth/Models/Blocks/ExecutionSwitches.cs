namespace AttnDreamBooth.Models.Blocks;

/// <summary>
/// Process-wide switches for alternatives to diffusers' op order that the benchmarks' <c>unet-ab</c> compares at real
/// size. All off by default (the order diffusers uses); an alternative that measures faster becomes the only path and its
/// switch goes away.
/// </summary>
internal static class ExecutionSwitches
{
    /// <summary>Resnets apply SiLU in place on their norms' outputs and add the shortcut in place into <c>conv2</c>'s output
    /// (neither tensor is needed by autograd afterwards).</summary>
    public static bool InPlaceResnet { get; set; }

    /// <summary>Transformer blocks add the residual in place into the feed-forward's output, and transformers add theirs in
    /// place into <c>proj_out</c>'s output (attention outputs stay out of place: a user's processor may keep them).</summary>
    public static bool InPlaceTransformerAdds { get; set; }

    /// <summary>Linear-projection transformers return their tokens → feature-map permute as a strided view instead of a
    /// contiguous copy (the residual add then produces the copy, in channels-last layout).</summary>
    public static bool TransformerOutputAsView { get; set; }

    /// <summary>Resnets run their 3×3 convolutions as im2col + matmul on feature maps of at most this many pixels (0 = never):
    /// libtorch's CPU convolution is slow on the U-Net's innermost maps (4×4–16×16, 1280–2560 channels).</summary>
    public static int MatmulConvolutionMaxPixels { get; set; }
}
