namespace AttnDreamBooth.Training;

/// <summary>
/// The 256 values an 8-bit optimizer state code stands for, as fractions of its block's absolute maximum: the "dynamic"
/// data type of Dettmers et al. (8-bit optimizers via block-wise quantization, 2022; after Dettmers 2016), as
/// bitsandbytes builds it. Magnitudes are spread over seven decades, 10⁻⁶ … 1, with more codes in the higher decades:
/// decade e (0…6) splits [0.1, 1]·10^(e−6) into 2^e equal intervals (2^(e+1) for the unsigned map) and takes their
/// midpoints; 0 and 1 complete the set. The signed map (first moment) mirrors the midpoints to negative values; the
/// unsigned map (second moment, never negative) spends the sign bit on a second set of finer midpoints instead.
/// </summary>
internal static class DynamicQuantizationMap
{
    private const int Decades = 7;

    /// <summary>Signed map, sorted ascending: −0.99297 … 0 … 1 (256 values).</summary>
    public static IReadOnlyList<float> Signed { get; } = Build(signed: true);

    /// <summary>Unsigned map, sorted ascending: 0 … 1 (256 values).</summary>
    public static IReadOnlyList<float> Unsigned { get; } = Build(signed: false);

    /// <summary>The map for a moment: signed for the first, unsigned for the second.</summary>
    public static IReadOnlyList<float> For(bool signed) => signed ? Signed : Unsigned;

    /// <summary>Decision boundaries for nearest-value quantization: the 255 midpoints between neighbouring map values.</summary>
    public static float[] Boundaries(IReadOnlyList<float> map)
    {
        var bounds = new float[map.Count - 1];
        for (int i = 0; i < bounds.Length; i++) bounds[i] = (float)(((double)map[i] + map[i + 1]) / 2);
        return bounds;
    }

    private static float[] Build(bool signed)
    {
        var values = new List<double> { 0.0, 1.0 };
        for (int e = 0; e < Decades; e++)
        {
            int intervals = signed ? 1 << e : 2 << e;
            double scale = Math.Pow(10, e - (Decades - 1));
            for (int k = 0; k < intervals; k++)
            {
                double low = 0.1 + 0.9 * k / intervals, high = 0.1 + 0.9 * (k + 1) / intervals;
                double mid = scale * (low + high) / 2;
                values.Add(mid);
                if (signed) values.Add(-mid);
            }
        }
        values.Sort();
        if (values.Count != 256) throw new InvalidOperationException($"The dynamic map has {values.Count} values instead of 256.");
        return values.Select(v => (float)v).ToArray();
    }
}
