using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// The AttnDreamBooth training objective for one micro-batch: noise the latents, condition on the prompt with the
/// concept embedding spliced in, predict with the U-Net while recording the cross-attention maps of [V] and the
/// category token, and return MSE + the weighted attention-map regularization, plus, with prior preservation, the
/// weighted diffusion loss of a batch of class images.
/// </summary>
/// <remarks>Self-attention stays on the fused kernel; only the cross-attention layers record, and only the two
/// token columns the loss needs.</remarks>
internal sealed class PersonalizationObjective : IDisposable
{
    private readonly StableDiffusionComponents _components;
    private readonly ConceptEmbedding _concept;
    private readonly DdpmScheduler _scheduler;
    private readonly AttentionMapStore _store = new();
    private readonly AttentionRecordingSession _recording;

    /// <summary>Installs the recorder on every cross-attention layer of the U-Net (restored on dispose).</summary>
    public PersonalizationObjective(StableDiffusionComponents components, ConceptEmbedding concept, DdpmScheduler scheduler)
    {
        _components = components ?? throw new ArgumentNullException(nameof(components));
        _concept = concept ?? throw new ArgumentNullException(nameof(concept));
        _scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
        _recording = components.UNet.Attach(_store);
    }

    /// <summary>The noise scheduler that defines the forward process and the training target.</summary>
    public DdpmScheduler Scheduler => _scheduler;

    /// <summary>The text conditioning of <paramref name="inputIds"/> with the concept rows spliced in.
    /// Carries a gradient into the concept embedding when it requires one.</summary>
    public Tensor EncodePrompt(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        return _concept.Encode(inputIds).LastHiddenState.MoveToOuterDisposeScope();
    }

    /// <summary>Computes the loss of one micro-batch.</summary>
    /// <param name="batch">Latents, noise, timesteps, prompt ids and token positions.</param>
    /// <param name="weights">The stage's regularization weights; (0, 0) skips recording entirely.</param>
    /// <param name="encoderHiddenStates">Precomputed conditioning for stages where the embedding is fixed; null
    /// computes it from the prompt (stage 1, where the gradient must reach the embedding).</param>
    /// <param name="prior">The class batch of the prior-preservation loss, or null; its weighted diffusion loss joins the
    /// total (one graph, as diffusers' concatenated batch).</param>
    public TrainingLoss Compute(TrainingBatch batch, AttentionRegularizationWeights weights, Tensor? encoderHiddenStates = null,
        PriorPreservationBatch? prior = null)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(weights);
        if (prior is not null && (!double.IsFinite(prior.Weight) || prior.Weight < 0))
            throw new ArgumentOutOfRangeException(nameof(prior), prior.Weight, "The prior-preservation weight must be a finite number ≥ 0.");
        using var scope = NewDisposeScope();
        var noisy = _scheduler.AddNoise(batch.Latents, batch.Noise, batch.Timesteps);
        var target = _scheduler.GetTrainingTarget(batch.Latents, batch.Noise, batch.Timesteps);
        var hidden = encoderHiddenStates ?? EncodePrompt(batch.InputIds);

        bool record = !weights.IsZero;
        _store.Clear();
        _store.IsRecording = record;
        if (record) _recording.Tokens = AttentionTokenSelection.PerRow(stack([batch.ConceptPositions, batch.CategoryPositions], 1));
        Tensor prediction;
        IReadOnlyList<Tensor> maps;
        try
        {
            prediction = _components.UNet.call(noisy, batch.Timesteps, hidden);
            maps = _store.Maps.Select(m => m.Probabilities).ToArray();
        }
        finally
        {
            _store.IsRecording = true;
        }

        var mse = nn.functional.mse_loss(prediction.to_type(float32), target.to_type(float32));
        Tensor attention;
        if (record)
        {
            long rows = batch.InputIds.shape[0];
            var conceptColumn = zeros(rows, dtype: int64, device: prediction.device);
            var categoryColumn = ones(rows, dtype: int64, device: prediction.device);
            attention = new AttentionMapRegularization(weights).Compute(maps, conceptColumn, categoryColumn);
        }
        else
        {
            attention = zeros([], dtype: float32, device: prediction.device);
        }
        _store.Clear();
        var attentionTerm = attention.to_type(float32);
        var loss = mse.add(attentionTerm, One);
        double priorMse = 0;
        if (prior is { Weight: > 0 })
        {
            var classMse = ComputeClassLoss(prior);
            priorMse = classMse.item<float>();
            loss = loss.add(classMse.mul(Kept(prior.Weight)), One);
        }
        var result = new TrainingLoss(loss.MoveToOuterDisposeScope(), attentionTerm.MoveToOuterDisposeScope(), mse.item<float>(), attentionTerm.item<float>(),
            prediction.detach().MoveToOuterDisposeScope(), hidden.detach().MoveToOuterDisposeScope())
        { PriorMse = priorMse };
        return result;
    }

    private Tensor ComputeClassLoss(PriorPreservationBatch prior)
    {
        var noisy = _scheduler.AddNoise(prior.Latents, prior.Noise, prior.Timesteps);
        var target = _scheduler.GetTrainingTarget(prior.Latents, prior.Noise, prior.Timesteps);
        // The class prompt has no [V]: nothing to record, and the fused kernel stays in use.
        _store.IsRecording = false;
        try
        {
            var prediction = _components.UNet.call(noisy, prior.Timesteps, prior.EncoderHiddenStates);
            return nn.functional.mse_loss(prediction.to_type(float32), target.to_type(float32));
        }
        finally
        {
            _store.IsRecording = true;
            _store.Clear();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _recording.Dispose();
        _store.Dispose();
    }
}
