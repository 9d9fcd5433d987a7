using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// The training noise schedule: betas, alphas and their cumulative product, as float32 tables computed the way
/// torch computes them in diffusers (float32 <c>linspace</c>, square, <c>cumprod</c>), so every scheduler built on
/// it agrees bit for bit with the reference. Immutable; holds no tensors (tensors are made on request, on the
/// device asked for).
/// </summary>
internal sealed class NoiseSchedule
{
    private readonly float[] _betas;
    private readonly float[] _alphas;
    private readonly float[] _alphasCumprod;

    private NoiseSchedule(float[] betas)
    {
        _betas = betas;
        using var scope = NewDisposeScope();
        var alphas = tensor(betas).neg().add(Kept(1f), One);
        _alphas = alphas.data<float>().ToArray();
        // torch.cumprod (it accumulates in double and rounds each entry to float32): the reference's table exactly.
        _alphasCumprod = alphas.cumprod(0).data<float>().ToArray();
    }

    /// <summary>Number of training timesteps (length of every table).</summary>
    public int NumTrainTimesteps => _betas.Length;

    /// <summary>beta_t, t = 0 .. T-1.</summary>
    public IReadOnlyList<float> Betas => Array.AsReadOnly(_betas);

    /// <summary>1 - beta_t.</summary>
    public IReadOnlyList<float> Alphas => Array.AsReadOnly(_alphas);

    /// <summary>The cumulative product a_t of the alphas (float32, as torch computes it).</summary>
    public IReadOnlyList<float> AlphasCumprod => Array.AsReadOnly(_alphasCumprod);

    internal float AlphaCumprodAt(long t) => _alphasCumprod[t];

    /// <summary>Builds the schedule a config describes (<c>trained_betas</c>, else <c>beta_schedule</c>).</summary>
    public static NoiseSchedule FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Build(config, honourZeroSnrRescale: config.Class == SchedulerClass.Ddim);
    }

    /// <summary>
    /// The schedule a model was trained with: as <see cref="FromConfig"/>, except that <c>rescale_betas_zero_snr</c> is
    /// honoured whatever the config's class. diffusers 0.24 knows the key on DDIM only, so its DDPM would add noise
    /// with the unrescaled schedule to a model whose sampler ends at zero signal, and fine-tuning would teach that
    /// model timesteps it never saw.
    /// </summary>
    internal static NoiseSchedule ForTraining(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Build(config, honourZeroSnrRescale: true);
    }

    private static NoiseSchedule Build(SchedulerConfig config, bool honourZeroSnrRescale)
    {
        var schedule = config.TrainedBetas is { } trained
            ? new NoiseSchedule(trained.Select(b => (float)b).ToArray())
            : Create(config.NumTrainTimesteps, config.BetaStart, config.BetaEnd, config.BetaSchedule);
        return honourZeroSnrRescale && config.RescaleBetasZeroSnr ? schedule.RescaledToZeroTerminalSnr() : schedule;
    }

    /// <summary>Builds a schedule from its parameters.</summary>
    public static NoiseSchedule Create(int numTrainTimesteps, double betaStart, double betaEnd, BetaSchedule schedule)
    {
        if (numTrainTimesteps < 1) throw new ArgumentOutOfRangeException(nameof(numTrainTimesteps), numTrainTimesteps, "must be at least 1");
        float[] betas = schedule switch
        {
            BetaSchedule.Linear => Float32Linspace(betaStart, betaEnd, numTrainTimesteps),
            BetaSchedule.ScaledLinear => Float32Linspace(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), numTrainTimesteps).Select(b => b * b).ToArray(),
            BetaSchedule.SquaredCosCapV2 => CosineBetas(numTrainTimesteps),
            _ => throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "unknown beta schedule"),
        };
        return new NoiseSchedule(betas);
    }

    /// <summary>A schedule from explicit betas (each in (0, 1)).</summary>
    public static NoiseSchedule FromBetas(IReadOnlyList<float> betas)
    {
        ArgumentNullException.ThrowIfNull(betas);
        if (betas.Count == 0) throw new ArgumentException("at least one beta is needed", nameof(betas));
        if (betas.Any(b => !(b > 0 && b < 1))) throw new ArgumentException("every beta must lie in (0, 1)", nameof(betas));
        return new NoiseSchedule(betas.ToArray());
    }

    /// <summary>betas as a float32 tensor [T].</summary>
    public Tensor BetasTensor(Device? device = null) => tensor(_betas, device: device);

    /// <summary>alphas_cumprod as a tensor [T] (float32 unless <paramref name="dtype"/> says otherwise).</summary>
    public Tensor AlphasCumprodTensor(Device? device = null, ScalarType? dtype = null)
    {
        var table = tensor(_alphasCumprod, device: device);
        return dtype is { } d && d != ScalarType.Float32 ? table.to_type(d) : table;
    }

    /// <summary>The forward process q(x_t | x_0): sqrt(a_t) * x0 + sqrt(1 - a_t) * noise, one timestep per batch row.</summary>
    /// <param name="originalSamples">x0 [B, ...].</param>
    /// <param name="noise">Noise with the shape of x0.</param>
    /// <param name="timesteps">Integer timesteps [B] (or a scalar) in [0, T).</param>
    public Tensor AddNoise(Tensor originalSamples, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (sqrtAlpha, sqrtOneMinusAlpha) = Coefficients(originalSamples, noise, timesteps, nameof(originalSamples));
        return sqrtAlpha.mul(originalSamples).add(sqrtOneMinusAlpha.mul(noise), One).MoveToOuterDisposeScope();
    }

    /// <summary>The v-prediction target: sqrt(a_t) * noise - sqrt(1 - a_t) * x0.</summary>
    public Tensor GetVelocity(Tensor sample, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var (sqrtAlpha, sqrtOneMinusAlpha) = Coefficients(sample, noise, timesteps, nameof(sample));
        return sqrtAlpha.mul(noise).sub(sqrtOneMinusAlpha.mul(sample)).MoveToOuterDisposeScope();
    }

    internal void CheckTimestep(long t, string paramName)
    {
        if (t < 0 || t >= NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(paramName, t, $"a timestep must lie in [0, {NumTrainTimesteps})");
    }

    private (Tensor SqrtAlpha, Tensor SqrtOneMinusAlpha) Coefficients(Tensor samples, Tensor noise, Tensor timesteps, string samplesName)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(noise);
        ArgumentNullException.ThrowIfNull(timesteps);
        if (!samples.shape.SequenceEqual(noise.shape))
            throw new ArgumentException($"noise has shape [{string.Join(", ", noise.shape)}] but {samplesName} has [{string.Join(", ", samples.shape)}]", nameof(noise));
        if (!samples.is_floating_point()) throw new ArgumentException($"{samplesName} must be a floating-point tensor", samplesName);
        if (timesteps.is_floating_point() || timesteps.dtype == ScalarType.Bool)
            throw new ArgumentException("timesteps must be an integer tensor", nameof(timesteps));
        var t = timesteps.flatten().to_type(ScalarType.Int64);
        long batch = samples.dim() == 0 ? 1 : samples.shape[0];
        if (t.shape[0] != 1 && t.shape[0] != batch)
            throw new ArgumentException($"expected one timestep or {batch} (one per batch row), found {t.shape[0]}", nameof(timesteps));
        long min = t.min().item<long>(), max = t.max().item<long>();
        if (min < 0 || max >= NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(timesteps), $"timesteps must lie in [0, {NumTrainTimesteps}), found {min}..{max}");
        var table = AlphasCumprodTensor(samples.device, samples.dtype);
        var alpha = table.index_select(0, t.to(samples.device));
        var sqrtAlpha = alpha.sqrt();
        var sqrtOneMinusAlpha = alpha.neg().add(Kept(1), One).sqrt();
        long[] shape = new long[Math.Max(samples.dim(), 1)];
        Array.Fill(shape, 1L);
        shape[0] = t.shape[0];
        return (sqrtAlpha.reshape(shape), sqrtOneMinusAlpha.reshape(shape));
    }

    /// <summary>
    /// torch.linspace(start, end, count, dtype=float32) as the reference's CPU kernel computes it: the first half
    /// counted up from start and the second half down from end, 8-wide vector blocks built from one fused
    /// multiply-add base each, the tail element-wise. (A plain i * step formula differs in the last bit for about
    /// a tenth of the betas, which then shows in every table.)
    /// </summary>
    internal static float[] Float32Linspace(double start, double end, int count)
    {
        float s = (float)start, e = (float)end;
        var values = new float[count];
        if (count == 1)
        {
            values[0] = s;
            return values;
        }
        float step = (e - s) / (count - 1);
        int half = count / 2;
        float At(int index) => index < half ? MathF.FusedMultiplyAdd(step, index, s) : MathF.FusedMultiplyAdd(-step, count - index - 1, e);
        const int width = 8;
        int vectorized = count / (2 * width) * (2 * width);
        for (int block = 0; block < vectorized; block += width)
        {
            float firstOfBlock = At(block);
            for (int j = 0; j < width; j++) values[block + j] = MathF.FusedMultiplyAdd(j, step, firstOfBlock);
        }
        for (int i = vectorized; i < count; i++) values[i] = At(i);
        return values;
    }

    private static float[] CosineBetas(int count)
    {
        static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        var betas = new float[count];
        for (int i = 0; i < count; i++)
        {
            double t1 = (double)i / count, t2 = (double)(i + 1) / count;
            betas[i] = (float)Math.Min(1 - AlphaBar(t2) / AlphaBar(t1), 0.999);
        }
        return betas;
    }

    // Zero terminal SNR (Lin et al. 2023, algorithm 1), in float32 like the reference.
    private NoiseSchedule RescaledToZeroTerminalSnr()
    {
        int n = _alphasCumprod.Length;
        var sqrtBar = _alphasCumprod.Select(MathF.Sqrt).ToArray();
        float first = sqrtBar[0], last = sqrtBar[n - 1];
        float scale = first / (first - last);
        for (int i = 0; i < n; i++) sqrtBar[i] = (sqrtBar[i] - last) * scale;
        var betas = new float[n];
        float previous = 1f;
        for (int i = 0; i < n; i++)
        {
            float bar = sqrtBar[i] * sqrtBar[i];
            betas[i] = 1f - (i == 0 ? bar : bar / previous);
            previous = bar;
        }
        return new NoiseSchedule(betas);
    }
}
