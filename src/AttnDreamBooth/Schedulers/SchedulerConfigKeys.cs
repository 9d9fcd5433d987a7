using System.Text.Json;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Schedulers;

/// <summary>The diffusers 0.24 scheduler keys: which class takes which, their defaults, parsing and spelling.</summary>
internal static class SchedulerConfigKeys
{
    private static readonly string[] Common = ["num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas"];

    // Signature order of each class's constructor, so ConstructorArguments reads like the class's config.
    private static readonly IReadOnlyDictionary<SchedulerClass, string[]> Arguments = new Dictionary<SchedulerClass, string[]>
    {
        [SchedulerClass.Ddpm] = [.. Common, "variance_type", "clip_sample", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
            "clip_sample_range", "sample_max_value", "timestep_spacing", "steps_offset"],
        [SchedulerClass.Ddim] = [.. Common, "clip_sample", "set_alpha_to_one", "steps_offset", "prediction_type", "thresholding",
            "dynamic_thresholding_ratio", "clip_sample_range", "sample_max_value", "timestep_spacing", "rescale_betas_zero_snr"],
        [SchedulerClass.DpmSolverMultistep] = [.. Common, "solver_order", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
            "sample_max_value", "algorithm_type", "solver_type", "lower_order_final", "euler_at_final", "use_karras_sigmas", "use_lu_lambdas",
            "lambda_min_clipped", "variance_type", "timestep_spacing", "steps_offset"],
        [SchedulerClass.Pndm] = [.. Common, "skip_prk_steps", "set_alpha_to_one", "prediction_type", "timestep_spacing", "steps_offset"],
        [SchedulerClass.Other] = Common,
        [SchedulerClass.EulerDiscrete] = [.. Common, "prediction_type", "interpolation_type", "use_karras_sigmas", "sigma_min", "sigma_max",
            "timestep_spacing", "timestep_type", "steps_offset"],
        [SchedulerClass.EulerAncestralDiscrete] = [.. Common, "prediction_type", "timestep_spacing", "steps_offset"],
        [SchedulerClass.UniPCMultistep] = [.. Common, "solver_order", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
            "sample_max_value", "predict_x0", "solver_type", "lower_order_final", "disable_corrector", "solver_p", "use_karras_sigmas",
            "timestep_spacing", "steps_offset"],
        [SchedulerClass.LmsDiscrete] = [.. Common, "use_karras_sigmas", "prediction_type", "timestep_spacing", "steps_offset"],
        [SchedulerClass.HeunDiscrete] = [.. Common, "prediction_type", "use_karras_sigmas", "clip_sample", "clip_sample_range",
            "timestep_spacing", "steps_offset"],
        [SchedulerClass.KDpm2Discrete] = [.. Common, "use_karras_sigmas", "prediction_type", "timestep_spacing", "steps_offset"],
        [SchedulerClass.DpmSolverSinglestep] = [.. Common, "solver_order", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
            "sample_max_value", "algorithm_type", "solver_type", "lower_order_final", "use_karras_sigmas", "lambda_min_clipped", "variance_type"],
        [SchedulerClass.DeisMultistep] = [.. Common, "solver_order", "prediction_type", "thresholding", "dynamic_thresholding_ratio",
            "sample_max_value", "algorithm_type", "solver_type", "lower_order_final", "use_karras_sigmas", "timestep_spacing", "steps_offset"],
    };

    // Used for a key the target class does not take and the file does not set; it then has no effect on that class.
    private static readonly IReadOnlyDictionary<string, object?> Fallback = new Dictionary<string, object?>(StringComparer.Ordinal)
    {
        ["num_train_timesteps"] = 1000,
        ["beta_start"] = 0.0001,
        ["beta_end"] = 0.02,
        ["beta_schedule"] = BetaSchedule.Linear,
        ["trained_betas"] = null,
        ["prediction_type"] = PredictionType.Epsilon,
        ["timestep_spacing"] = TimestepSpacing.Leading,
        ["steps_offset"] = 0,
        ["set_alpha_to_one"] = true,
        ["clip_sample"] = true,
        ["clip_sample_range"] = 1.0,
        ["thresholding"] = false,
        ["dynamic_thresholding_ratio"] = 0.995,
        ["sample_max_value"] = 1.0,
        ["variance_type"] = DdpmVarianceType.FixedSmall,
        ["rescale_betas_zero_snr"] = false,
        ["skip_prk_steps"] = false,
        ["algorithm_type"] = DpmSolverAlgorithm.DpmSolverPlusPlus,
        ["solver_order"] = 2,
        ["solver_type"] = DpmSolverType.Midpoint,
        ["lower_order_final"] = true,
        ["euler_at_final"] = false,
        ["use_karras_sigmas"] = false,
        ["use_lu_lambdas"] = false,
        ["lambda_min_clipped"] = double.NegativeInfinity,
        ["interpolation_type"] = SigmaInterpolation.Linear,
        ["sigma_min"] = null,
        ["sigma_max"] = null,
        ["timestep_type"] = TimestepType.Discrete,
        ["predict_x0"] = true,
        ["disable_corrector"] = Array.Empty<int>(),
        ["solver_p"] = null,
    };

    /// <summary>Every key this library reads.</summary>
    public static IReadOnlySet<string> AllKeys { get; } = new HashSet<string>(Fallback.Keys, StringComparer.Ordinal);

    public static IReadOnlyList<string> ArgumentsOf(SchedulerClass target) => Arguments[target];

    public static object? DefaultFor(SchedulerClass target, string key) => (target, key) switch
    {
        (SchedulerClass.Pndm, "set_alpha_to_one") => false,
        (SchedulerClass.DpmSolverMultistep, "timestep_spacing") => TimestepSpacing.Linspace,
        (SchedulerClass.DpmSolverMultistep, "variance_type") => null,
        (SchedulerClass.DpmSolverSinglestep, "variance_type") => null,
        (SchedulerClass.EulerDiscrete or SchedulerClass.EulerAncestralDiscrete or SchedulerClass.UniPCMultistep or SchedulerClass.LmsDiscrete
            or SchedulerClass.HeunDiscrete or SchedulerClass.KDpm2Discrete or SchedulerClass.DeisMultistep, "timestep_spacing") => TimestepSpacing.Linspace,
        (SchedulerClass.HeunDiscrete, "clip_sample") => false,
        (SchedulerClass.UniPCMultistep, "solver_type") => DpmSolverType.Bh2,
        (SchedulerClass.DeisMultistep, "solver_type") => DpmSolverType.Logrho,
        (SchedulerClass.DeisMultistep, "algorithm_type") => DpmSolverAlgorithm.Deis,
        _ => Fallback[key],
    };

    public static object? Parse(ConfigReader reader, string key) => key switch
    {
        "num_train_timesteps" or "steps_offset" or "solver_order" => reader.GetInt(key),
        "beta_start" or "beta_end" or "clip_sample_range" or "dynamic_thresholding_ratio" or "sample_max_value" or "lambda_min_clipped"
            or "sigma_min" or "sigma_max" => reader.GetDouble(key),
        "set_alpha_to_one" or "clip_sample" or "thresholding" or "rescale_betas_zero_snr" or "skip_prk_steps" or "lower_order_final"
            or "euler_at_final" or "use_karras_sigmas" or "use_lu_lambdas" or "predict_x0" => reader.GetBool(key),
        "disable_corrector" => reader.GetIntArray(key),
        // A nested scheduler object (UniPC's external predictor): not supported, so any non-null value is refused.
        "solver_p" => throw new ModelConfigException(reader.FilePath, key, "an external predictor scheduler is not supported; remove the key or set it to null"),
        "interpolation_type" => Choose(reader, key, new Dictionary<string, object>
        {
            ["linear"] = SigmaInterpolation.Linear, ["log_linear"] = SigmaInterpolation.LogLinear,
        }),
        "timestep_type" => Choose(reader, key, new Dictionary<string, object>
        {
            ["discrete"] = TimestepType.Discrete, ["continuous"] = TimestepType.Continuous,
        }),
        "trained_betas" => ParseDoubles(reader, key),
        "beta_schedule" => Choose(reader, key, new Dictionary<string, object>
        {
            ["linear"] = BetaSchedule.Linear, ["scaled_linear"] = BetaSchedule.ScaledLinear, ["squaredcos_cap_v2"] = BetaSchedule.SquaredCosCapV2,
        }),
        "prediction_type" => Choose(reader, key, new Dictionary<string, object>
        {
            ["epsilon"] = PredictionType.Epsilon, ["v_prediction"] = PredictionType.VPrediction, ["sample"] = PredictionType.Sample,
        }),
        "timestep_spacing" => Choose(reader, key, new Dictionary<string, object>
        {
            ["leading"] = TimestepSpacing.Leading, ["linspace"] = TimestepSpacing.Linspace, ["trailing"] = TimestepSpacing.Trailing,
        }),
        "variance_type" => Choose(reader, key, new Dictionary<string, object>
        {
            ["fixed_small"] = DdpmVarianceType.FixedSmall, ["fixed_small_log"] = DdpmVarianceType.FixedSmallLog,
            ["fixed_large"] = DdpmVarianceType.FixedLarge, ["fixed_large_log"] = DdpmVarianceType.FixedLargeLog,
            ["learned"] = DdpmVarianceType.Learned, ["learned_range"] = DdpmVarianceType.LearnedRange,
        }),
        // Each multistep class maps the other classes' spellings to its own (SchedulerConfig resolves that per class).
        "algorithm_type" => Choose(reader, key, new Dictionary<string, object>
        {
            ["dpmsolver++"] = DpmSolverAlgorithm.DpmSolverPlusPlus, ["dpmsolver"] = DpmSolverAlgorithm.DpmSolver,
            ["sde-dpmsolver++"] = DpmSolverAlgorithm.SdeDpmSolverPlusPlus, ["sde-dpmsolver"] = DpmSolverAlgorithm.SdeDpmSolver,
            ["deis"] = DpmSolverAlgorithm.Deis,
        }),
        "solver_type" => Choose(reader, key, new Dictionary<string, object>
        {
            ["midpoint"] = DpmSolverType.Midpoint, ["heun"] = DpmSolverType.Heun,
            ["logrho"] = DpmSolverType.Logrho, ["bh1"] = DpmSolverType.Bh1, ["bh2"] = DpmSolverType.Bh2,
        }),
        _ => throw new ArgumentOutOfRangeException(nameof(key), key, "not a known scheduler key"),
    };

    /// <summary>The value as diffusers writes it in a config (enum → its string).</summary>
    public static object? ToDiffusersValue(object? value) => value switch
    {
        BetaSchedule.Linear => "linear",
        BetaSchedule.ScaledLinear => "scaled_linear",
        BetaSchedule.SquaredCosCapV2 => "squaredcos_cap_v2",
        PredictionType.Epsilon => "epsilon",
        PredictionType.VPrediction => "v_prediction",
        PredictionType.Sample => "sample",
        TimestepSpacing.Leading => "leading",
        TimestepSpacing.Linspace => "linspace",
        TimestepSpacing.Trailing => "trailing",
        DdpmVarianceType.FixedSmall => "fixed_small",
        DdpmVarianceType.FixedSmallLog => "fixed_small_log",
        DdpmVarianceType.FixedLarge => "fixed_large",
        DdpmVarianceType.FixedLargeLog => "fixed_large_log",
        DdpmVarianceType.Learned => "learned",
        DdpmVarianceType.LearnedRange => "learned_range",
        DpmSolverAlgorithm.DpmSolverPlusPlus => "dpmsolver++",
        DpmSolverAlgorithm.DpmSolver => "dpmsolver",
        DpmSolverAlgorithm.SdeDpmSolverPlusPlus => "sde-dpmsolver++",
        DpmSolverAlgorithm.SdeDpmSolver => "sde-dpmsolver",
        DpmSolverType.Midpoint => "midpoint",
        DpmSolverType.Heun => "heun",
        DpmSolverType.Logrho => "logrho",
        DpmSolverType.Bh1 => "bh1",
        DpmSolverType.Bh2 => "bh2",
        DpmSolverAlgorithm.Deis => "deis",
        SigmaInterpolation.Linear => "linear",
        SigmaInterpolation.LogLinear => "log_linear",
        TimestepType.Discrete => "discrete",
        TimestepType.Continuous => "continuous",
        _ => value,
    };

    private static object Choose(ConfigReader reader, string key, Dictionary<string, object> choices)
    {
        string text = reader.GetString(key);
        return choices.TryGetValue(text, out var value)
            ? value
            : throw new ModelConfigException(reader.FilePath, key, $"unknown value '{text}'; expected one of {string.Join(", ", choices.Keys)}");
    }

    private static double[] ParseDoubles(ConfigReader reader, string key)
    {
        var element = reader.Raw(key)!.Value;
        if (element.ValueKind != JsonValueKind.Array) throw new ModelConfigException(reader.FilePath, key, "expected an array of numbers or null");
        return element.EnumerateArray()
            .Select(e => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw new ModelConfigException(reader.FilePath, key, "expected an array of numbers or null"))
            .ToArray();
    }
}
