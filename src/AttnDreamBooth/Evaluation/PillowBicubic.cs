namespace AttnDreamBooth.Evaluation;

/// <summary>
/// Pillow's <c>Image.resize(size, BICUBIC)</c> for 8-bit RGB, reproduced exactly: a separable filter (horizontal pass
/// first, each pass only when that size changes) whose support grows with the downscale factor, weights normalised in
/// double precision then quantised to 22-bit fixed point, an 8-bit clipped image between and after the passes.
/// </summary>
internal static class PillowBicubic
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const double Support = 2.0;

    /// <summary>The cubic convolution kernel with a = -0.5, evaluated in the same order Pillow does (rounding matters
    /// for the fixed-point weights).</summary>
    private static double Kernel(double x)
    {
        const double a = -0.5;
        if (x < 0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Per output pixel: first input index, tap count and fixed-point weights.</summary>
    private static (int[] Start, int[] Count, int[] Weights, int Taps) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = Support * filterScale;
        int taps = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new int[outSize * taps];
        var w = new double[taps];
        for (int i = 0; i < outSize; i++)
        {
            double center = (i + 0.5) * scale;
            double inverse = 1.0 / filterScale;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            double total = 0;
            for (int x = 0; x < xmax; x++)
            {
                w[x] = Kernel((x + xmin - center + 0.5) * inverse);
                total += w[x];
            }
            for (int x = 0; x < xmax; x++)
            {
                double normalised = total != 0 ? w[x] / total : w[x];
                weights[i * taps + x] = normalised < 0
                    ? (int)(-0.5 + normalised * (1 << PrecisionBits))
                    : (int)(0.5 + normalised * (1 << PrecisionBits));
            }
            start[i] = xmin;
            count[i] = xmax;
        }
        return (start, count, weights, taps);
    }

    private static byte Clip8(long value)
    {
        if (value >= 1L << PrecisionBits << 8) return 255;
        if (value <= 0) return 0;
        return (byte)(value >> PrecisionBits);
    }

    /// <summary>Resizes interleaved RGB bytes <c>[height, width, 3]</c> to <c>[outHeight, outWidth, 3]</c>.</summary>
    public static byte[] Resize(byte[] pixels, int height, int width, int outHeight, int outWidth)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outWidth);
        byte[] current = pixels;
        if (outWidth != width)
        {
            var (start, count, weights, taps) = Coefficients(width, outWidth);
            var next = new byte[height * outWidth * 3];
            for (int y = 0; y < height; y++)
            {
                int inRow = y * width * 3;
                int outRow = y * outWidth * 3;
                for (int x = 0; x < outWidth; x++)
                {
                    long r = 1L << (PrecisionBits - 1), g = r, b = r;
                    int k = x * taps;
                    for (int t = 0; t < count[x]; t++)
                    {
                        int p = inRow + (start[x] + t) * 3;
                        long weight = weights[k + t];
                        r += current[p] * weight;
                        g += current[p + 1] * weight;
                        b += current[p + 2] * weight;
                    }
                    int o = outRow + x * 3;
                    next[o] = Clip8(r);
                    next[o + 1] = Clip8(g);
                    next[o + 2] = Clip8(b);
                }
            }
            current = next;
            width = outWidth;
        }
        if (outHeight != height)
        {
            var (start, count, weights, taps) = Coefficients(height, outHeight);
            var next = new byte[outHeight * width * 3];
            int stride = width * 3;
            for (int y = 0; y < outHeight; y++)
            {
                int k = y * taps;
                for (int c = 0; c < stride; c++)
                {
                    long sum = 1L << (PrecisionBits - 1);
                    for (int t = 0; t < count[y]; t++) sum += current[(start[y] + t) * stride + c] * (long)weights[k + t];
                    next[y * stride + c] = Clip8(sum);
                }
            }
            current = next;
        }
        return ReferenceEquals(current, pixels) ? (byte[])pixels.Clone() : current;
    }
}
