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
    };

    /// <summary>Every key this library reads.</summary>
    public static IReadOnlySet<string> AllKeys { get; } = new HashSet<string>(Fallback.Keys, StringComparer.Ordinal);

    public static IReadOnlyList<string> ArgumentsOf(SchedulerClass target) => Arguments[target];

    public static object? DefaultFor(SchedulerClass target, string key) => (target, key) switch
    {
        (SchedulerClass.Pndm, "set_alpha_to_one") => false,
        (SchedulerClass.DpmSolverMultistep, "timestep_spacing") => TimestepSpacing.Linspace,
        (SchedulerClass.DpmSolverMultistep, "variance_type") => null,
        _ => Fallback[key],
    };

    public static object? Parse(ConfigReader reader, string key) => key switch
    {
        "num_train_timesteps" or "steps_offset" or "solver_order" => reader.GetInt(key),
        "beta_start" or "beta_end" or "clip_sample_range" or "dynamic_thresholding_ratio" or "sample_max_value" or "lambda_min_clipped"
            => reader.GetDouble(key),
        "set_alpha_to_one" or "clip_sample" or "thresholding" or "rescale_betas_zero_snr" or "skip_prk_steps" or "lower_order_final"
            or "euler_at_final" or "use_karras_sigmas" or "use_lu_lambdas" => reader.GetBool(key),
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
        // deis, logrho, bh1 and bh2 come from configs of other multistep solvers; diffusers maps them the same way.
        "algorithm_type" => Choose(reader, key, new Dictionary<string, object>
        {
            ["dpmsolver++"] = DpmSolverAlgorithm.DpmSolverPlusPlus, ["dpmsolver"] = DpmSolverAlgorithm.DpmSolver,
            ["sde-dpmsolver++"] = DpmSolverAlgorithm.SdeDpmSolverPlusPlus, ["sde-dpmsolver"] = DpmSolverAlgorithm.SdeDpmSolver,
            ["deis"] = DpmSolverAlgorithm.DpmSolverPlusPlus,
        }),
        "solver_type" => Choose(reader, key, new Dictionary<string, object>
        {
            ["midpoint"] = DpmSolverType.Midpoint, ["heun"] = DpmSolverType.Heun,
            ["logrho"] = DpmSolverType.Midpoint, ["bh1"] = DpmSolverType.Midpoint, ["bh2"] = DpmSolverType.Midpoint,
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
