namespace AttnDreamBooth.Schedulers;

/// <summary>Range checks on a scheduler config beyond the per-key ones: a schedule that is not increasing, or one
/// whose noise level cannot be represented, loads without complaint elsewhere and yields black images.</summary>
internal static class SchedulerConfigBounds
{
    /// <summary>The smallest final cumulative alpha accepted: below it <c>1 / sqrt(alpha_cumprod)</c> leaves the float32 range.</summary>
    public const double MinFinalAlphaCumprod = 1e-30;

    /// <exception cref="AttnDreamBooth.IO.ModelConfigException">A bound is broken; names the file and key.</exception>
    public static void Check(SchedulerConfig config)
    {
        IReadOnlyList<double> betas;
        if (config.TrainedBetas is { } trained)
        {
            for (int t = 1; t < trained.Count; t++)
            {
                if (trained[t] < trained[t - 1])
                    throw config.Error("trained_betas", $"must not decrease: beta[{t}] = {trained[t]} is below beta[{t - 1}] = {trained[t - 1]}");
            }
            betas = trained;
        }
        else if (config.BetaSchedule is BetaSchedule.Linear or BetaSchedule.ScaledLinear)
        {
            if (!(config.BetaStart < config.BetaEnd))
                throw config.Error("beta_start", $"must be below beta_end (betas increase with the timestep): found beta_start {config.BetaStart}, beta_end {config.BetaEnd}");
            betas = NoiseSchedule.Create(config.NumTrainTimesteps, config.BetaStart, config.BetaEnd, config.BetaSchedule).Betas.Select(b => (double)b).ToArray();
        }
        else
        {
            return;
        }
        double cumulative = 1;
        foreach (double beta in betas) cumulative *= 1 - beta;
        if (!(cumulative >= MinFinalAlphaCumprod))
            throw config.Error("num_train_timesteps",
                $"the schedule's final cumulative alpha is {cumulative:G3} (below {MinFinalAlphaCumprod:G1}), which float32 sampling cannot represent; lower num_train_timesteps or the betas");
    }
}
