using TorchSharp;

namespace AttnDreamBooth.Schedulers;

/// <summary>
/// The sampling side of a scheduler, as a generation loop uses it: <see cref="SetTimesteps"/>, then for each of
/// <see cref="Timesteps"/> in order: the model on <see cref="ScaleModelInput"/>(sample), then <see cref="Step"/>.
/// A sampler is stateful (its step counter and, for multistep solvers, the previous predictions) and not
/// thread-safe; one instance per generation. Dispose releases tensors it holds between steps.
/// </summary>
public interface IDiffusionSampler : IDisposable
{
    /// <summary>The effective configuration (resolved for this sampler's class).</summary>
    SchedulerConfig Config { get; }

    /// <summary>What the model output passed to <see cref="Step"/> means.</summary>
    PredictionType PredictionType { get; }

    /// <summary>Chooses <paramref name="steps"/> inference timesteps and restarts the sampler.</summary>
    void SetTimesteps(int steps);

    /// <summary>The inference timesteps, first to last (empty before <see cref="SetTimesteps"/> for DDIM and DPM-Solver).</summary>
    IReadOnlyList<long> Timesteps { get; }

    /// <summary>
    /// The timesteps as the model should be given them, first to last. Equal to <see cref="Timesteps"/> for samplers
    /// on integer timesteps; fractional for the k-diffusion samplers (Euler, LMS, Heun, KDPM2 …), whose
    /// <see cref="Timesteps"/> then holds the rounded values (accepted by <see cref="Step"/> and <see cref="ScaleModelInput"/>).
    /// </summary>
    IReadOnlyList<double> ModelTimesteps => Timesteps.Select(t => (double)t).ToArray();

    /// <summary>The timesteps as an int64 tensor.</summary>
    torch.Tensor TimestepsTensor(torch.Device? device = null);

    /// <summary>Number of steps taken since the last <see cref="SetTimesteps"/> or <see cref="Reset"/>.</summary>
    int StepIndex { get; }

    /// <summary>Standard deviation of the initial noise (multiply N(0, 1) latents by it).</summary>
    double InitNoiseSigma { get; }

    /// <summary>Scales the model input for this timestep (identity for DDPM, DDIM and DPM-Solver).</summary>
    torch.Tensor ScaleModelInput(torch.Tensor sample, long timestep);

    /// <summary>One reverse step from <paramref name="sample"/> at <paramref name="timestep"/> given the model output.</summary>
    /// <param name="modelOutput">The network output (epsilon, v or x0 according to <see cref="PredictionType"/>).</param>
    /// <param name="timestep">The current timestep (an entry of <see cref="Timesteps"/>).</param>
    /// <param name="sample">The current sample x_t.</param>
    /// <param name="generator">Source of the step's noise for stochastic samplers; ignored by deterministic ones.</param>
    SchedulerStepOutput Step(torch.Tensor modelOutput, long timestep, torch.Tensor sample, torch.Generator? generator = null);

    /// <summary>Restarts the same timesteps from the first step (drops the step counter and history).</summary>
    void Reset();
}

/// <summary>
/// The training side of a scheduler: the forward process, the regression target and the noise schedule, for a training
/// loop of one's own (<see cref="DiffusionSamplers.ForTraining"/>). Dispose it when training ends.
/// </summary>
public interface ITrainingNoiseScheduler : IDisposable
{
    /// <summary>Number of training timesteps T.</summary>
    int NumTrainTimesteps { get; }

    /// <summary>What the network is trained to predict.</summary>
    PredictionType PredictionType { get; }

    /// <summary>x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise, one timestep per batch row.</summary>
    torch.Tensor AddNoise(torch.Tensor x0, torch.Tensor noise, torch.Tensor timesteps);

    /// <summary>v = sqrt(a_t) noise - sqrt(1 - a_t) x0.</summary>
    torch.Tensor GetVelocity(torch.Tensor x0, torch.Tensor noise, torch.Tensor timesteps);

    /// <summary>The regression target for <see cref="PredictionType"/>: noise, v, or x0.</summary>
    torch.Tensor GetTrainingTarget(torch.Tensor x0, torch.Tensor noise, torch.Tensor timesteps);

    /// <summary>Timesteps drawn uniformly from [0, T), int64 [batch].</summary>
    torch.Tensor SampleTimesteps(int batch, torch.Generator? generator = null, torch.Device? device = null);

    /// <summary>The cumulative signal fraction a_t of every training timestep (float32, T entries), as
    /// <see cref="AddNoise"/> uses it: the basis of SNR-weighted losses, SNR(t) = a_t / (1 - a_t).</summary>
    IReadOnlyList<float> AlphasCumprod { get; }

    /// <summary>The noise that <paramref name="modelOutput"/> implies for <paramref name="sample"/> x_t at
    /// <paramref name="timestep"/>, whatever <see cref="PredictionType"/> the model predicts (a new tensor): compares
    /// models of different prediction types in the same units.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timestep"/> is outside [0, T).</exception>
    torch.Tensor PredictedNoise(torch.Tensor modelOutput, torch.Tensor sample, long timestep);
}
