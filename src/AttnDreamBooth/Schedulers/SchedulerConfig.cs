using System.Collections.ObjectModel;
using System.Text.Json;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// A diffusers <c>scheduler_config.json</c>, resolved for one scheduler class with diffusers' <c>from_config</c>
/// rule: keys present in the file win, every other constructor argument takes the target class's default (not the
/// default of the class the file names). <see cref="Load"/> resolves for the class named by <c>_class_name</c>;
/// <see cref="For"/> re-resolves the same file for another class, e.g. a DDIM or DPM-Solver++ sampler built from
/// the <c>PNDMScheduler</c> config of SD 1.5. Unknown keys are tolerated; a known key with a bad value is a
/// <see cref="ModelConfigException"/> naming the file and key. JSON <c>null</c> counts as absent.
/// </summary>
public sealed record SchedulerConfig
{
    private readonly IReadOnlyDictionary<string, object?> _explicit;
    private readonly IReadOnlyDictionary<string, JsonElement> _fileEntries;

    private SchedulerConfig(string sourcePath, string? className, string? diffusersVersion, SchedulerClass target,
        IReadOnlyDictionary<string, object?> explicitValues, IReadOnlyDictionary<string, JsonElement> fileEntries)
    {
        SourcePath = sourcePath;
        ClassName = className;
        DiffusersVersion = diffusersVersion;
        Class = target;
        _explicit = explicitValues;
        _fileEntries = fileEntries;
        object? V(string key) => explicitValues.TryGetValue(key, out var v) && (v is not null || NullableKeys.Contains(key))
            ? v
            : SchedulerConfigKeys.DefaultFor(target, key);
        NumTrainTimesteps = (int)V("num_train_timesteps")!;
        BetaStart = (double)V("beta_start")!;
        BetaEnd = (double)V("beta_end")!;
        BetaSchedule = (BetaSchedule)V("beta_schedule")!;
        TrainedBetas = V("trained_betas") is double[] tb ? Array.AsReadOnly(tb) : null;
        PredictionType = (PredictionType)V("prediction_type")!;
        TimestepSpacing = (TimestepSpacing)V("timestep_spacing")!;
        StepsOffset = (int)V("steps_offset")!;
        SetAlphaToOne = (bool)V("set_alpha_to_one")!;
        ClipSample = (bool)V("clip_sample")!;
        ClipSampleRange = (double)V("clip_sample_range")!;
        Thresholding = (bool)V("thresholding")!;
        DynamicThresholdingRatio = (double)V("dynamic_thresholding_ratio")!;
        SampleMaxValue = (double)V("sample_max_value")!;
        VarianceType = (DdpmVarianceType?)V("variance_type");
        RescaleBetasZeroSnr = (bool)V("rescale_betas_zero_snr")!;
        SkipPrkSteps = (bool)V("skip_prk_steps")!;
        AlgorithmType = ResolveAlgorithm(target, (DpmSolverAlgorithm)V("algorithm_type")!);
        SolverOrder = (int)V("solver_order")!;
        SolverType = ResolveSolverType(target, (DpmSolverType)V("solver_type")!);
        LowerOrderFinal = (bool)V("lower_order_final")!;
        EulerAtFinal = (bool)V("euler_at_final")!;
        UseKarrasSigmas = (bool)V("use_karras_sigmas")!;
        UseLuLambdas = (bool)V("use_lu_lambdas")!;
        LambdaMinClipped = (double)V("lambda_min_clipped")!;
        InterpolationType = (SigmaInterpolation)V("interpolation_type")!;
        SigmaMin = (double?)V("sigma_min");
        SigmaMax = (double?)V("sigma_max");
        TimestepType = (TimestepType)V("timestep_type")!;
        PredictX0 = (bool)V("predict_x0")!;
        DisableCorrector = Array.AsReadOnly((int[])V("disable_corrector")!);
        Validate();
    }

    private static readonly HashSet<string> NullableKeys = ["trained_betas", "variance_type", "sigma_min", "sigma_max", "solver_p"];

    // Each multistep class maps the algorithm / solver spellings of its sibling classes to its own, as diffusers'
    // constructors do (register_to_config), so the effective config shows the class's own value.
    private static DpmSolverAlgorithm ResolveAlgorithm(SchedulerClass target, DpmSolverAlgorithm value) => (target, value) switch
    {
        (SchedulerClass.DeisMultistep, DpmSolverAlgorithm.DpmSolver or DpmSolverAlgorithm.DpmSolverPlusPlus) => DpmSolverAlgorithm.Deis,
        (not SchedulerClass.DeisMultistep, DpmSolverAlgorithm.Deis) => DpmSolverAlgorithm.DpmSolverPlusPlus,
        _ => value,
    };

    private static DpmSolverType ResolveSolverType(SchedulerClass target, DpmSolverType value) => (target, value) switch
    {
        (SchedulerClass.UniPCMultistep, DpmSolverType.Midpoint or DpmSolverType.Heun or DpmSolverType.Logrho) => DpmSolverType.Bh2,
        (SchedulerClass.DeisMultistep, not DpmSolverType.Logrho) => DpmSolverType.Logrho,
        (not (SchedulerClass.UniPCMultistep or SchedulerClass.DeisMultistep), DpmSolverType.Logrho or DpmSolverType.Bh1 or DpmSolverType.Bh2)
            => DpmSolverType.Midpoint,
        _ => value,
    };

    /// <summary>The file the values come from (<c>&lt;memory&gt;</c> for parsed text).</summary>
    public string SourcePath { get; }

    /// <summary><c>_class_name</c> as written in the file (e.g. <c>PNDMScheduler</c>), or null.</summary>
    public string? ClassName { get; }

    /// <summary><c>_diffusers_version</c> as written in the file, or null.</summary>
    public string? DiffusersVersion { get; }

    /// <summary>The class the values are resolved for (its defaults fill the keys the file lacks).</summary>
    internal SchedulerClass Class { get; }

    /// <summary><c>num_train_timesteps</c>.</summary>
    public int NumTrainTimesteps { get; }

    /// <summary><c>beta_start</c>.</summary>
    public double BetaStart { get; }

    /// <summary><c>beta_end</c>.</summary>
    public double BetaEnd { get; }

    /// <summary><c>beta_schedule</c>.</summary>
    internal BetaSchedule BetaSchedule { get; }

    /// <summary><c>trained_betas</c>: explicit betas that replace the schedule, or null.</summary>
    public IReadOnlyList<double>? TrainedBetas { get; }

    /// <summary><c>prediction_type</c>.</summary>
    public PredictionType PredictionType { get; }

    /// <summary><c>timestep_spacing</c> (DDPM/DDIM default leading, DPM-Solver default linspace).</summary>
    internal TimestepSpacing TimestepSpacing { get; }

    /// <summary><c>steps_offset</c>: added to leading timesteps.</summary>
    public int StepsOffset { get; }

    /// <summary><c>set_alpha_to_one</c> (DDIM): the alpha product after the last step is 1 instead of alphas_cumprod[0].</summary>
    public bool SetAlphaToOne { get; }

    /// <summary><c>clip_sample</c> (DDPM/DDIM; their default is true).</summary>
    public bool ClipSample { get; }

    /// <summary><c>clip_sample_range</c>.</summary>
    public double ClipSampleRange { get; }

    /// <summary><c>thresholding</c>: dynamic thresholding of the predicted x0.</summary>
    public bool Thresholding { get; }

    /// <summary><c>dynamic_thresholding_ratio</c>: the quantile of |x0| used by thresholding.</summary>
    public double DynamicThresholdingRatio { get; }

    /// <summary><c>sample_max_value</c>: upper bound of the thresholding scale.</summary>
    public double SampleMaxValue { get; }

    /// <summary><c>variance_type</c> (DDPM default fixed_small; DPM-Solver default null).</summary>
    internal DdpmVarianceType? VarianceType { get; }

    /// <summary><c>rescale_betas_zero_snr</c> (DDIM).</summary>
    public bool RescaleBetasZeroSnr { get; }

    /// <summary><c>skip_prk_steps</c> (PNDM; carried along, unused here).</summary>
    public bool SkipPrkSteps { get; }

    /// <summary><c>algorithm_type</c> (DPM-Solver; <c>deis</c> reads as dpmsolver++ as in diffusers).</summary>
    internal DpmSolverAlgorithm AlgorithmType { get; }

    /// <summary><c>solver_order</c> (DPM-Solver, 1 to 3).</summary>
    public int SolverOrder { get; }

    /// <summary><c>solver_type</c> (DPM-Solver; <c>logrho</c>, <c>bh1</c>, <c>bh2</c> read as midpoint as in diffusers).</summary>
    internal DpmSolverType SolverType { get; }

    /// <summary><c>lower_order_final</c> (DPM-Solver): lower-order last steps, only when fewer than 15 steps.</summary>
    public bool LowerOrderFinal { get; }

    /// <summary><c>euler_at_final</c> (DPM-Solver): first-order last step whatever the step count.</summary>
    public bool EulerAtFinal { get; }

    /// <summary><c>use_karras_sigmas</c> (DPM-Solver).</summary>
    public bool UseKarrasSigmas { get; }

    /// <summary><c>use_lu_lambdas</c> (DPM-Solver): steps uniform in log-SNR.</summary>
    public bool UseLuLambdas { get; }

    /// <summary><c>lambda_min_clipped</c> (DPM-Solver; may be -infinity, written <c>"-inf"</c>).</summary>
    public double LambdaMinClipped { get; }

    /// <summary><c>interpolation_type</c> (Euler).</summary>
    internal SigmaInterpolation InterpolationType { get; }

    /// <summary><c>sigma_min</c> (Euler with Karras sigmas): the smallest sigma, or null for the schedule's own.</summary>
    public double? SigmaMin { get; }

    /// <summary><c>sigma_max</c> (Euler with Karras sigmas): the largest sigma, or null for the schedule's own.</summary>
    public double? SigmaMax { get; }

    /// <summary><c>timestep_type</c> (Euler).</summary>
    internal TimestepType TimestepType { get; }

    /// <summary><c>predict_x0</c> (UniPC): solve for the data prediction (true, the default) or the noise prediction.</summary>
    public bool PredictX0 { get; }

    /// <summary><c>disable_corrector</c> (UniPC): step indices whose following step skips the UniC corrector.</summary>
    public IReadOnlyList<int> DisableCorrector { get; }

    /// <summary>The keys present (and not null) in the file, including unknown ones and <c>_</c>-prefixed ones.</summary>
    public IReadOnlyCollection<string> FileKeys => _fileEntries.Keys.ToArray();

    /// <summary>
    /// The constructor arguments of <see cref="Class"/> with their effective values, in the class's signature order,
    /// as diffusers would record them (enums as their diffusers strings, <c>trained_betas</c> as a double array or null).
    /// </summary>
    public IReadOnlyDictionary<string, object?> ConstructorArguments
    {
        get
        {
            var result = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (string key in SchedulerConfigKeys.ArgumentsOf(Class)) result[key] = SchedulerConfigKeys.ToDiffusersValue(ValueOf(key));
            return new ReadOnlyDictionary<string, object?>(result);
        }
    }

    /// <summary>
    /// Keys of the file that <see cref="Class"/> does not take (other than <c>_</c>-prefixed ones), raw. diffusers keeps
    /// them in the config of the built scheduler so a later <c>from_config</c> to another class still sees them.
    /// </summary>
    public IReadOnlyDictionary<string, JsonElement> CarriedKeys
    {
        get
        {
            var taken = new HashSet<string>(SchedulerConfigKeys.ArgumentsOf(Class), StringComparer.Ordinal);
            return new ReadOnlyDictionary<string, JsonElement>(_fileEntries
                .Where(p => !p.Key.StartsWith('_') && !taken.Contains(p.Key))
                .ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal));
        }
    }

    /// <summary>Reads a <c>scheduler_config.json</c> and resolves it for the class it names.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static SchedulerConfig Load(string path, ResourceLimits? limits = null)
    {
        using var scope = ResourceLimits.Use(limits);
        return FromReader(ConfigReader.Load(path));
    }

    /// <summary>Reads a scheduler folder (<c>scheduler/</c>) or a <c>scheduler_config.json</c> path.</summary>
    /// <param name="path">The folder or file.</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static SchedulerConfig LoadFolderOrFile(string path, ResourceLimits? limits = null) =>
        Load(Directory.Exists(path) ? Path.Combine(path, "scheduler_config.json") : path, limits);

    /// <summary>Resolves an already-opened config for the class named by its <c>_class_name</c>.</summary>
    internal static SchedulerConfig FromReader(ConfigReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        string? className = reader.GetNullableString("_class_name");
        var entries = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var property in reader.Root.EnumerateObject())
        {
            if (property.Value.ValueKind != JsonValueKind.Null) entries[property.Name] = property.Value.Clone();
        }
        var explicitValues = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (string key in SchedulerConfigKeys.AllKeys)
        {
            if (reader.Root.TryGetProperty(key, out var raw) && raw.ValueKind != JsonValueKind.Null)
                explicitValues[key] = SchedulerConfigKeys.Parse(reader, key);
        }
        return new SchedulerConfig(reader.FilePath, className, reader.GetNullableString("_diffusers_version"), ClassOf(className),
            explicitValues, entries);
    }

    /// <summary>Parses JSON text (tests and in-memory configs).</summary>
    /// <param name="json">The JSON object.</param>
    /// <param name="filePath">The name used in error messages.</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static SchedulerConfig Parse(string json, string filePath = "<memory>", ResourceLimits? limits = null)
    {
        using var scope = ResourceLimits.Use(limits);
        return FromReader(ConfigReader.Parse(json, filePath));
    }

    /// <summary>The same file resolved for <paramref name="target"/> (diffusers <c>TargetClass.from_config(file)</c>).</summary>
    internal SchedulerConfig For(SchedulerClass target) =>
        target == Class ? this : new SchedulerConfig(SourcePath, ClassName, DiffusersVersion, target, _explicit, _fileEntries);

    /// <summary>A copy with some keys overridden, as diffusers' <c>from_config(config, key=value)</c> does.</summary>
    /// <param name="overrides">diffusers key → value (int, double, bool, the diffusers string of an enum, or null).</param>
    public SchedulerConfig With(IReadOnlyDictionary<string, object?> overrides)
    {
        ArgumentNullException.ThrowIfNull(overrides);
        var merged = new Dictionary<string, object?>(_explicit, StringComparer.Ordinal);
        foreach (var (key, value) in overrides)
        {
            if (!SchedulerConfigKeys.AllKeys.Contains(key)) throw new ModelConfigException(SourcePath, key, "not a known scheduler key");
            string json = value switch
            {
                Enum e => JsonSerializer.Serialize(SchedulerConfigKeys.ToDiffusersValue(e)),
                // JSON has no infinity literal; diffusers' configs spell it as a string.
                double d when double.IsNegativeInfinity(d) => "\"-inf\"",
                double d when double.IsPositiveInfinity(d) => "\"inf\"",
                _ => JsonSerializer.Serialize(value),
            };
            var reader = ConfigReader.Parse($"{{\"{key}\": {json}}}", SourcePath);
            merged[key] = value is null ? null : SchedulerConfigKeys.Parse(reader, key);
        }
        return new SchedulerConfig(SourcePath, ClassName, DiffusersVersion, Class, merged, _fileEntries);
    }

    /// <summary>Maps a diffusers class name to <see cref="SchedulerClass"/> (<see cref="SchedulerClass.Other"/> when unknown).</summary>
    internal static SchedulerClass ClassOf(string? className) => className switch
    {
        "DDPMScheduler" => SchedulerClass.Ddpm,
        "DDIMScheduler" => SchedulerClass.Ddim,
        "DPMSolverMultistepScheduler" => SchedulerClass.DpmSolverMultistep,
        "PNDMScheduler" => SchedulerClass.Pndm,
        "EulerDiscreteScheduler" => SchedulerClass.EulerDiscrete,
        "EulerAncestralDiscreteScheduler" => SchedulerClass.EulerAncestralDiscrete,
        "UniPCMultistepScheduler" => SchedulerClass.UniPCMultistep,
        "LMSDiscreteScheduler" => SchedulerClass.LmsDiscrete,
        "HeunDiscreteScheduler" => SchedulerClass.HeunDiscrete,
        "KDPM2DiscreteScheduler" => SchedulerClass.KDpm2Discrete,
        "DPMSolverSinglestepScheduler" => SchedulerClass.DpmSolverSinglestep,
        "DEISMultistepScheduler" => SchedulerClass.DeisMultistep,
        _ => SchedulerClass.Other,
    };

    internal ModelConfigException Error(string key, string problem) => new(SourcePath, key, problem);

    private object? ValueOf(string key) => key switch
    {
        "num_train_timesteps" => NumTrainTimesteps,
        "beta_start" => BetaStart,
        "beta_end" => BetaEnd,
        "beta_schedule" => BetaSchedule,
        "trained_betas" => TrainedBetas?.ToArray(),
        "prediction_type" => PredictionType,
        "timestep_spacing" => TimestepSpacing,
        "steps_offset" => StepsOffset,
        "set_alpha_to_one" => SetAlphaToOne,
        "clip_sample" => ClipSample,
        "clip_sample_range" => ClipSampleRange,
        "thresholding" => Thresholding,
        "dynamic_thresholding_ratio" => DynamicThresholdingRatio,
        "sample_max_value" => SampleMaxValue,
        "variance_type" => VarianceType,
        "rescale_betas_zero_snr" => RescaleBetasZeroSnr,
        "skip_prk_steps" => SkipPrkSteps,
        "algorithm_type" => AlgorithmType,
        "solver_order" => SolverOrder,
        "solver_type" => SolverType,
        "lower_order_final" => LowerOrderFinal,
        "euler_at_final" => EulerAtFinal,
        "use_karras_sigmas" => UseKarrasSigmas,
        "use_lu_lambdas" => UseLuLambdas,
        "lambda_min_clipped" => LambdaMinClipped,
        "interpolation_type" => InterpolationType,
        "sigma_min" => SigmaMin,
        "sigma_max" => SigmaMax,
        "timestep_type" => TimestepType,
        "predict_x0" => PredictX0,
        "disable_corrector" => DisableCorrector.ToArray(),
        "solver_p" => null,
        _ => throw new ArgumentOutOfRangeException(nameof(key), key, "not a known scheduler key"),
    };

    private void Validate()
    {
        if (NumTrainTimesteps < 1) throw Error("num_train_timesteps", $"must be at least 1, found {NumTrainTimesteps}");
        if (NumTrainTimesteps > IO.ResourceLimits.Current.MaxTrainTimesteps)
            throw Error("num_train_timesteps", $"{NumTrainTimesteps:N0} {IO.ResourceLimits.Exceeds(nameof(IO.ResourceLimits.MaxTrainTimesteps), IO.ResourceLimits.Current.MaxTrainTimesteps)}");
        if (TrainedBetas is { } tb)
        {
            if (tb.Count != NumTrainTimesteps)
                throw Error("trained_betas", $"has {tb.Count} entries but num_train_timesteps is {NumTrainTimesteps}");
            if (tb.Any(b => !(b > 0 && b < 1))) throw Error("trained_betas", "every beta must lie in (0, 1)");
        }
        else if (BetaSchedule != BetaSchedule.SquaredCosCapV2)
        {
            if (!(BetaStart > 0 && BetaStart < 1)) throw Error("beta_start", $"must lie in (0, 1), found {BetaStart}");
            if (!(BetaEnd > 0 && BetaEnd < 1)) throw Error("beta_end", $"must lie in (0, 1), found {BetaEnd}");
        }
        if (StepsOffset < 0) throw Error("steps_offset", $"must not be negative, found {StepsOffset}");
        if (SolverOrder is < 1 or > 3) throw Error("solver_order", $"must be 1, 2 or 3, found {SolverOrder}");
        if (!(DynamicThresholdingRatio > 0 && DynamicThresholdingRatio <= 1))
            throw Error("dynamic_thresholding_ratio", $"must lie in (0, 1], found {DynamicThresholdingRatio}");
        if (!(SampleMaxValue >= 1)) throw Error("sample_max_value", $"must be at least 1, found {SampleMaxValue}");
        if (!(ClipSampleRange > 0)) throw Error("clip_sample_range", $"must be positive, found {ClipSampleRange}");
        if (double.IsNaN(LambdaMinClipped)) throw Error("lambda_min_clipped", "must not be NaN");
        if (SigmaMin is { } smin && !(smin > 0)) throw Error("sigma_min", $"must be positive, found {smin}");
        if (SigmaMax is { } smax && !(smax > (SigmaMin ?? 0))) throw Error("sigma_max", $"must be positive and above sigma_min, found {smax}");
        SchedulerConfigBounds.Check(this);
    }
}
