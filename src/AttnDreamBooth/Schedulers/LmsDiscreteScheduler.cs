using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// Linear multistep (LMS) as diffusers 0.24 <c>LMSDiscreteScheduler</c>: x' = x + sum_j c_j d_{i-j} over the last
/// (up to 4) derivatives d = (x - x0) / sigma, c_j the integral of the j-th Lagrange basis polynomial over
/// [sigma_i, sigma_{i+1}]. The reference integrates numerically (scipy <c>quad</c>); here the polynomial is integrated
/// exactly in float64, which agrees to about 1e-7 relative. Karras sigmas, leading, linspace or trailing spacing.
/// </summary>
internal sealed class LmsDiscreteScheduler : KDiffusionSampler
{
    private const int MaxOrder = 4;
    private readonly List<Tensor> _derivatives = [];

    private LmsDiscreteScheduler(SchedulerConfig config)
        : base(config, nameof(LmsDiscreteScheduler))
    {
    }

    /// <summary>Builds the sampler from any scheduler config (diffusers <c>LMSDiscreteScheduler.from_config</c>).</summary>
    public static LmsDiscreteScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new LmsDiscreteScheduler(config.For(SchedulerClass.LmsDiscrete));
    }

    /// <inheritdoc/>
    public override void Reset()
    {
        foreach (var d in _derivatives) d.Dispose();
        _derivatives.Clear();
        base.Reset();
    }

    /// <summary>The LMS coefficients of step <paramref name="index"/> with <paramref name="order"/> terms (newest derivative first).</summary>
    public double[] Coefficients(int index, int order)
    {
        if (index < 0 || index + 1 >= Sigmas.Count) throw new ArgumentOutOfRangeException(nameof(index), index, "not a step of the schedule");
        if (order < 1 || order > index + 1) throw new ArgumentOutOfRangeException(nameof(order), order, "must lie in [1, index + 1]");
        double from = Sigmas[index], to = Sigmas[index + 1];
        var result = new double[order];
        for (int j = 0; j < order; j++)
        {
            // The basis polynomial prod_{k != j} (tau - s_{i-k}) / (s_{i-j} - s_{i-k}), expanded and integrated exactly.
            double[] poly = [1.0];
            for (int k = 0; k < order; k++)
            {
                if (k == j) continue;
                double root = Sigmas[index - k], scale = 1.0 / ((double)Sigmas[index - j] - Sigmas[index - k]);
                var next = new double[poly.Length + 1];
                for (int p = 0; p < poly.Length; p++)
                {
                    next[p + 1] += poly[p] * scale;
                    next[p] -= poly[p] * root * scale;
                }
                poly = next;
            }
            double integral = 0;
            for (int p = 0; p < poly.Length; p++) integral += poly[p] / (p + 1) * (Math.Pow(to, p + 1) - Math.Pow(from, p + 1));
            result[j] = integral;
        }
        return result;
    }

    private protected override (Tensor Prev, Tensor? X0) StepCore(Tensor modelOutput, Tensor sample, int index, Generator? generator, Tensor? noise)
    {
        float sigma = Sigmas[index];
        var x0 = PredictX0(modelOutput, sample, sigma);
        _derivatives.Add(sample.sub(x0).div(Kept(sigma)).DetachFromDisposeScope());
        if (_derivatives.Count > MaxOrder)
        {
            _derivatives[0].Dispose();
            _derivatives.RemoveAt(0);
        }
        int order = Math.Min(index + 1, MaxOrder);
        var coefficients = Coefficients(index, order);
        Tensor? sum = null;
        for (int j = 0; j < order; j++)
        {
            var term = _derivatives[^(j + 1)].mul(Kept((float)coefficients[j]));
            sum = sum is null ? term : sum.add(term, One);
        }
        return (sample.add(sum!, One), x0);
    }
}
