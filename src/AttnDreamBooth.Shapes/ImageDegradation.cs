using AttnDreamBooth.Imaging;

namespace AttnDreamBooth.Shapes;

/// <summary>
/// A deterministic stand-in for what a generative model does to an image — Gaussian blur, then Gaussian pixel noise —
/// used to measure how the analyzer holds up on images that are not exact renders.
/// </summary>
/// <param name="BlurSigma">Blur standard deviation in pixels (0 for none).</param>
/// <param name="NoiseSigma">Noise standard deviation in 8-bit units (0 for none).</param>
public sealed record ImageDegradation(double BlurSigma, double NoiseSigma)
{
    /// <summary>Applies the degradation; the noise is drawn from <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A sigma is negative or too large (blur ≤ 4, noise ≤ 64).</exception>
    public RgbImage Apply(RgbImage image, long seed)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (!(BlurSigma >= 0 && BlurSigma <= 4)) throw new ArgumentOutOfRangeException(nameof(BlurSigma), BlurSigma, "BlurSigma must be in [0, 4].");
        if (!(NoiseSigma >= 0 && NoiseSigma <= 64)) throw new ArgumentOutOfRangeException(nameof(NoiseSigma), NoiseSigma, "NoiseSigma must be in [0, 64].");
        int w = image.Width, h = image.Height;
        var values = image.Pixels.Select(p => (double)p).ToArray();
        if (BlurSigma > 0)
        {
            int r = (int)Math.Ceiling(3 * BlurSigma);
            var kernel = Enumerable.Range(-r, 2 * r + 1).Select(k => Math.Exp(-k * k / (2 * BlurSigma * BlurSigma))).ToArray();
            double sum = kernel.Sum();
            for (int k = 0; k < kernel.Length; k++) kernel[k] /= sum;
            values = Convolve(values, w, h, kernel, horizontal: true);
            values = Convolve(values, w, h, kernel, horizontal: false);
        }
        var rng = new WorldRandom(seed);
        var pixels = new byte[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            double noise = 0;
            if (NoiseSigma > 0)
            {
                // Box–Muller from two uniforms in (0, 1].
                double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                noise = NoiseSigma * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
            }
            pixels[i] = (byte)Math.Clamp(Math.Round(values[i] + noise), 0, 255);
        }
        return new RgbImage(w, h, pixels);
    }

    /// <summary>Separable convolution with edge clamping.</summary>
    private static double[] Convolve(double[] src, int w, int h, double[] kernel, bool horizontal)
    {
        int r = kernel.Length / 2;
        var dst = new double[src.Length];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                {
                    double acc = 0;
                    for (int k = -r; k <= r; k++)
                    {
                        int sx = horizontal ? Math.Clamp(x + k, 0, w - 1) : x;
                        int sy = horizontal ? y : Math.Clamp(y + k, 0, h - 1);
                        acc += kernel[k + r] * src[(sy * w + sx) * 3 + c];
                    }
                    dst[(y * w + x) * 3 + c] = acc;
                }
        return dst;
    }
}
