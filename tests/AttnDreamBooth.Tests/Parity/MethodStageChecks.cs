using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using AttnDreamBooth.Training;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/method-stage1..3": one official AttnDreamBooth training step per stage, from the stored latents,
/// noise and timesteps: loss parts, the named gradients, and parameters after one AdamW step.
/// </summary>
public abstract class MethodStageCheck : IParityCheck
{
    protected abstract int Stage { get; }
    public string Name => $"method-stage{Stage}";
    public IReadOnlyCollection<string> Components => ["method"];
    private string Prefix => $"method.stage{Stage}.";

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "sd_pipeline" && fixture.Manifest.Tensors.Keys.Any(k => k.StartsWith(Prefix, StringComparison.Ordinal));

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        fixture.Manifest.Tensors.Keys.Where(k => k.StartsWith(Prefix, StringComparison.Ordinal) || (Stage != 1 && IsSharedInput(k)));

    private static bool IsSharedInput(string name) => name is "method.stage1.latents" or "method.stage1.noise" or "method.stage1.timesteps" or "method.stage1.input_ids";

    public void Run(ParityContext ctx)
    {
        var facts = ctx.Manifest;
        using var components = StableDiffusionComponents.Load(ctx.Case.PipelineFolder);
        string token = facts.Fact("method.new_token").GetString()!;
        string initializer = facts.Fact("method.initializer_token").GetString()!;
        string prompt = facts.Fact("method.instance_prompt").GetString()!;
        var stageFacts = facts.Fact("method.stages").GetProperty(Stage.ToString());
        double lr = stageFacts.GetProperty("learning_rate").GetDouble();
        var w = stageFacts.GetProperty("reg_weights").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var weights = new AttentionRegularizationWeights(w[0], w[1]);

        using var concept = ConceptEmbedding.Create(components.Tokenizer, components.TextEncoder, ConceptToken.New(token, initializer));
        Assert.Equal(facts.Fact("method.new_token_id").GetInt64(), concept.TokenIds[0]);

        var latents = ctx.Tensor("method.stage1.latents");
        var noise = ctx.Tensor("method.stage1.noise");
        var timesteps = ctx.Tensor("method.stage1.timesteps");
        var storedIds = ctx.Tensor("method.stage1.input_ids");
        int batch = (int)latents.shape[0];
        var ids = components.Tokenizer.EncodeToTensor(Enumerable.Repeat(prompt, batch).ToArray());
        Assert.True(ids.eq(storedIds).all().item<bool>(), "input_ids of the instance prompt");
        var conceptPositions = TokenPositions.FindFirst(ids, concept.TokenIds[0]);
        var categoryIds = components.Tokenizer.EncodeWithoutSpecialTokens(initializer);
        var categoryPositions = TokenPositions.FindCategory(ids, conceptPositions, categoryIds[0]);

        using var scheduler = DdpmScheduler.FromConfig(components.SchedulerConfig);
        using var objective = new PersonalizationObjective(components, concept, scheduler);
        var trainer = new PersonalizationTrainerProbe(components, concept);
        var trainable = trainer.Select(Stage);
        if (Stage == 1)
        {
            ctx.AssertClose("method.stage1.token_index_v", conceptPositions);
            ctx.AssertClose("method.stage1.initial_embedding", concept.Weight.detach());
            ctx.AssertClose("method.stage1.noisy_latents", scheduler.AddNoise(latents, noise, timesteps));
            ctx.AssertClose("method.stage1.target", scheduler.GetTrainingTarget(latents, noise, timesteps));
        }
        var before = trainable.ToDictionary(p => p.Name, p => p.Parameter.detach().clone());
        var result = objective.Compute(new TrainingBatch(latents, noise, timesteps, ids, conceptPositions, categoryPositions), weights);
        if (Stage == 1)
        {
            ctx.AssertClose("method.stage1.encoder_hidden_states", result.EncoderHiddenStates);
            ctx.AssertClose("method.stage1.model_pred", result.ModelPrediction);
        }
        ctx.AssertClose(Prefix + "loss_mse", tensor((float)result.Mse));
        ctx.AssertClose(Prefix + "loss_reg", tensor((float)result.Attention));
        ctx.AssertClose(Prefix + "loss", result.Loss.detach());
        result.Loss.backward();

        using var optimizer = new AdamWOptimizer(trainable, new AdamWOptions(), lr);
        switch (Stage)
        {
            case 1:
                ctx.AssertClose("method.stage1.embedding_grad", concept.Weight.grad!);
                optimizer.Step();
                ctx.AssertClose("method.stage1.embedding_after_step", concept.Weight.detach());
                ctx.AssertClose("method.stage1.embedding_step_delta", concept.Weight.detach().sub(before["concept.embedding"]));
                break;
            default:
                string probe = ctx.Manifest.Tensors.Keys.First(k => k.StartsWith(Prefix + "grad.", StringComparison.Ordinal))[(Prefix + "grad.").Length..];
                var parameter = trainable.Single(p => p.Name == "unet." + probe).Parameter;
                ctx.AssertClose(Prefix + "grad." + probe, parameter.grad!);
                double sumSq = trainable.Sum(p => p.Parameter.grad is null ? 0 : p.Parameter.grad.to_type(float64).pow(Kept(2)).sum().item<double>());
                if (Stage == 2) ctx.AssertClose("method.stage2.grad_sq_sum", tensor(sumSq, dtype: float64));
                else ctx.AssertClose("method.stage3.grad_norm", tensor(Math.Sqrt(sumSq), dtype: float64));
                optimizer.Step();
                ctx.AssertClose(Prefix + "after_step." + probe, parameter.detach());
                ctx.AssertClose(Prefix + "step_delta." + probe, parameter.detach().sub(before["unet." + probe]));
                break;
        }
        if (Stage != 1) ctx.MarkUsed("method.stage1.input_ids");
    }
}

public sealed class MethodStage1Check : MethodStageCheck { protected override int Stage => 1; }
public sealed class MethodStage2Check : MethodStageCheck { protected override int Stage => 2; }
public sealed class MethodStage3Check : MethodStageCheck { protected override int Stage => 3; }

/// <summary>Selects a stage's trainable parameters the way the trainer does.</summary>
internal sealed class PersonalizationTrainerProbe(StableDiffusionComponents components, ConceptEmbedding concept)
{
    public List<(string Name, TorchSharp.Modules.Parameter Parameter)> Select(int stage) =>
        new PersonalizationTrainer(components, concept, StagePlan.Paper, new TrainingOptions(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, null, null)
            .SelectTrainable((TrainingStage)stage);
}
