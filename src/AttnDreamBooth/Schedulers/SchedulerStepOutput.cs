using TorchSharp;

namespace AttnDreamBooth.Schedulers;

/// <summary>The result of one sampler step.</summary>
/// <param name="PrevSample">x_{t-1}: the sample to feed to the next step.</param>
/// <param name="PredOriginalSample">The model's estimate of x0 at this step (DPM-Solver: its data prediction), when the sampler forms one.</param>
public sealed record SchedulerStepOutput(torch.Tensor PrevSample, torch.Tensor? PredOriginalSample);
