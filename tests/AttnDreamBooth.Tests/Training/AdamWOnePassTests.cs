using AttnDreamBooth.Personalization;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Text;
using AttnDreamBooth.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Training;

/// <summary>
/// The one-pass AdamW update against PyTorch's formula evaluated in float64. Stated bound: the CPU kernel computes
/// each element in double and rounds each stored value once, so it is within 1 ulp of the float64 formula rounded to
/// float32 (the float64 evaluations may differ in their last double bit, which can flip a float32 rounding). The float32
/// whole-tensor paths (the device fallback and the original multi-op reference) round after every operation; under
/// cancellation (e.g. β1·m ≈ −(1−β1)·g) a few roundings of the terms are many ulps of the result, so their bound is
/// stated relative to the terms: ≤ 8 roundings (8 · 2⁻²⁴ · Σ|terms|; about five operations feed each stored value).
/// </summary>
public sealed class AdamWOnePassTests
{
    private const long KernelUlpBound = 1;
    private const double TermRoundingBound = 8;

    public static TheoryData<int[], double, double> Cases() => new()
    {
        // sizes (several parameters per optimizer), weight decay, learning rate
        { [1, 7, 8, 9, 31, 33, 1000], 1e-2, 1e-3 },
        { [1, 7, 8, 9, 31, 33, 1000], 0.0, 1e-3 },
        { [65_536 + 13, 200_003, 5], 1e-2, 2e-6 },   // several parallel chunks, ragged tails
        { [131_072, 3], 0.0, 2e-5 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelIsWithinOneUlpOfTheFloat64FormulaOverManySteps(int[] sizes, double weightDecay, double lr)
    {
        var options = new AdamWOptions { WeightDecay = weightDecay };
        var generator = new Generator(1234);
        var parameters = sizes.Select((n, i) => ($"p{i}", new Parameter(randn([n], generator: generator)))).ToList();
        using var optimizer = new AdamWOptimizer(parameters, options, lr);
        long worst = 0;
        for (int step = 1; step <= 25; step++)
        {
            using var scope = NewDisposeScope();
            foreach (var (_, p) in parameters) p.grad = Gradient(p.shape, step, generator);
            var before = Snapshot(optimizer);
            optimizer.Step();
            var s = Scalars(options, lr, step);
            var after = optimizer.StateTensors();
            foreach (var (name, p) in parameters)
            {
                var (p0, g0, m0, v0) = before[name];
                var reference = AdamWTestMath.Formula(p0, g0, m0, v0, s);
                worst = Math.Max(worst, AdamWTestMath.MaxUlps(p.detach(), reference.Param));
                worst = Math.Max(worst, AdamWTestMath.MaxUlps(after[name + ".exp_avg"], reference.ExpAvg));
                worst = Math.Max(worst, AdamWTestMath.MaxUlps(after[name + ".exp_avg_sq"], reference.ExpAvgSq));
            }
            Assert.True(worst <= KernelUlpBound, $"step {step}: {worst} ulp");
        }
    }

    [Fact]
    public void TensorOpPathAndTheMultiOpReferenceAgreeWithTheFormulaToFloat32RoundingOfTheTerms()
    {
        var options = AdamWOptions.Default;
        const double lr = 1e-3;
        foreach (var path in new[] { AdamWUpdatePath.TensorOps, AdamWUpdatePath.MultiOp })
        {
            var generator = new Generator(99);
            var parameters = new[] { 5, 4099, 70_001 }.Select((n, i) => ($"p{i}", new Parameter(randn([n], generator: generator)))).ToList();
            using var optimizer = new AdamWOptimizer(parameters, options, lr) { UpdatePath = path };
            double worst = 0;
            for (int step = 1; step <= 10; step++)
            {
                using var scope = NewDisposeScope();
                foreach (var (_, p) in parameters) p.grad = Gradient(p.shape, step, generator);
                var before = Snapshot(optimizer);
                optimizer.Step();
                var after = optimizer.StateTensors();
                foreach (var (name, p) in parameters)
                {
                    var (p0, g0, m0, v0) = before[name];
                    var r = AdamWTestMath.Formula(p0, g0, m0, v0, Scalars(options, lr, step));
                    worst = Math.Max(worst, AdamWTestMath.MaxScaledError(p.detach(), r.Param, r.ParamScale));
                    worst = Math.Max(worst, AdamWTestMath.MaxScaledError(after[name + ".exp_avg"], r.ExpAvg, r.ExpAvgScale));
                    worst = Math.Max(worst, AdamWTestMath.MaxScaledError(after[name + ".exp_avg_sq"], r.ExpAvgSq, r.ExpAvgSqScale));
                }
            }
            Assert.True(worst <= TermRoundingBound, $"{path}: {worst:F2} roundings of the terms");
        }
    }

    [Fact]
    public void ZeroGradientsOnlyDecayTheParameterAndTheMoments()
    {
        var p = new Parameter(randn([1000], generator: new Generator(5)));
        var start = p.detach().clone();
        using var optimizer = new AdamWOptimizer([("p", p)], AdamWOptions.Default, 1e-3);
        p.grad = zeros_like(p);
        optimizer.Step();
        // m = v = 0 and g = 0: the update is 0 / (0 + ε), so only the decoupled decay acts (here exact in double).
        Assert.True(AdamWTestMath.MaxUlps(p.detach(), start.to(float64).mul(Kept(1 - 1e-3 * 1e-2)).to(float32)) == 0);
        Assert.Equal(0f, optimizer.StateTensors()["p.exp_avg"].abs().max().item<float>());
    }

    [Fact]
    public void KernelTakesDenseLayoutsAndDeclinesTheRest()
    {
        using var scope = NewDisposeScope();
        var contiguous = randn(4, 3, 5, 5);
        Assert.True(AdamWOnePassUpdate.UsesCpuKernel(Four(contiguous, contiguous.clone(), zeros_like(contiguous), zeros_like(contiguous))));
        // Channels-last-like: the same dense permutation for all four tensors.
        var permuted = randn(4, 5, 5, 3).permute(0, 3, 1, 2);
        Assert.False(permuted.is_contiguous());
        Assert.True(AdamWOnePassUpdate.UsesCpuKernel(Four(permuted, empty_like(permuted).copy_(permuted), zeros_like(permuted), zeros_like(permuted))));
        // A gradient in another layout, a strided view with gaps, an expanded (overlapping) tensor, float64: no.
        Assert.False(AdamWOnePassUpdate.UsesCpuKernel(Four(permuted, contiguous, zeros_like(permuted), zeros_like(permuted))));
        Tensor Gappy() => randn(8, 10)[.., ..5];
        Assert.False(AdamWOnePassUpdate.UsesCpuKernel(Four(Gappy(), Gappy(), Gappy(), Gappy())));
        var expanded = randn(1, 5).expand(4, 5);
        Assert.False(AdamWOnePassUpdate.UsesCpuKernel(Four(expanded, expanded, expanded, expanded)));
        var doubles = randn(10, dtype: float64);
        Assert.False(AdamWOnePassUpdate.UsesCpuKernel(Four(doubles, doubles.clone(), doubles.clone(), doubles.clone())));
    }

    [Fact]
    public void PermutedParametersGetMomentsInTheirLayoutAndTheKernelResult()
    {
        var generator = new Generator(8);
        var p = new Parameter(randn([6, 5, 5, 7], generator: generator).permute(0, 3, 1, 2));
        using var optimizer = new AdamWOptimizer([("w", p)], AdamWOptions.Default, 1e-3);
        for (int step = 1; step <= 3; step++)
        {
            using var scope = NewDisposeScope();
            var g = empty_like(p).copy_(randn(p.shape, generator: generator));
            p.grad = g;
            var before = Snapshot(optimizer)["w"];
            optimizer.Step();
            var r = AdamWTestMath.Formula(before.P, before.G, before.M, before.V, Scalars(AdamWOptions.Default, 1e-3, step));
            Assert.True(AdamWTestMath.MaxUlps(p.detach(), r.Param) <= KernelUlpBound);
        }
    }

    [Fact]
    public void HalfPrecisionParametersUpdateThroughAFloat32MasterCopy()
    {
        var generator = new Generator(3);
        var init = randn([5000], generator: generator);
        var grad = randn([5000], generator: generator);
        var results = new List<Tensor>();
        foreach (var path in new[] { AdamWUpdatePath.OnePass, AdamWUpdatePath.MultiOp })
        {
            var p = new Parameter(init.to(bfloat16));
            using var optimizer = new AdamWOptimizer([("p", p)], AdamWOptions.Default, 1e-2) { UpdatePath = path };
            p.grad = grad.to(bfloat16);
            optimizer.Step();
            Assert.Equal(ScalarType.BFloat16, p.dtype);
            Assert.Equal(ScalarType.Float32, optimizer.StateTensors()["p.exp_avg"].dtype);
            results.Add(p.detach().to(float32));
        }
        // Both compute in float32 and round to bf16: they differ at most where float32 rounding straddles a bf16 step.
        var differing = results[0].ne(results[1]).sum().item<long>();
        Assert.True(differing <= 5000 / 100, $"{differing} of 5000 bf16 values differ between the paths");
        Assert.True(results[0].ne(init.to(bfloat16).to(float32)).any().item<bool>());
    }

    /// <summary>One real stage-3 step of the tiny SD 1.x pipeline (MSE + attention-map loss, every U-Net parameter):
    /// the optimizer's update of all 304 tensors, twice (so the moments are non-zero the second time).</summary>
    [Fact]
    public void RealStageThreeStepIsWithinOneUlpOfTheFloat64Formula()
    {
        using var components = StableDiffusionComponents.Load(TestPaths.TinySd1);
        using var concept = ConceptEmbedding.Create(components.Tokenizer, components.TextEncoder, ConceptToken.New("new_concept_v0", "dog"));
        using var scheduler = DdpmScheduler.FromConfig(components.SchedulerConfig);
        using var objective = new PersonalizationObjective(components, concept, scheduler);
        var trainable = components.UNet.named_parameters().Select(p => ("unet." + p.name, p.parameter)).ToList();
        foreach (var (_, p) in trainable) p.requires_grad = true;
        components.UNet.train();
        var generator = new Generator(17);
        var ids = components.Tokenizer.EncodeToTensor(["a photo of a new_concept_v0 dog", "a photo of a new_concept_v0 dog"]);
        var v = TokenPositions.FindFirst(ids, concept.TokenIds[0]);
        var c = TokenPositions.FindCategory(ids, v, components.Tokenizer.EncodeWithoutSpecialTokens("dog")[0]);
        var batch = new TrainingBatch(randn([2, 4, 32, 32], generator: generator), randn([2, 4, 32, 32], generator: generator),
            tensor(new long[] { 10, 900 }), ids, v, c);
        objective.Compute(batch, AttentionRegularizationWeights.FineTuningStage).Loss.backward();
        Assert.All(trainable, p => Assert.NotNull(p.parameter.grad));

        var options = StagePlan.Paper.Stage3.Optimizer;
        double lr = StagePlan.Paper.Stage3.LearningRate;
        using var optimizer = new AdamWOptimizer(trainable, options, lr);
        for (int step = 1; step <= 2; step++)
        {
            var before = Snapshot(optimizer);
            optimizer.Step();
            var after = optimizer.StateTensors();
            long worst = 0;
            foreach (var (name, p) in trainable)
            {
                var (p0, g0, m0, v0) = before[name];
                var r = AdamWTestMath.Formula(p0, g0, m0, v0, Scalars(options, lr, step));
                worst = Math.Max(worst, AdamWTestMath.MaxUlps(p.detach(), r.Param));
                worst = Math.Max(worst, AdamWTestMath.MaxUlps(after[name + ".exp_avg"], r.ExpAvg));
                worst = Math.Max(worst, AdamWTestMath.MaxUlps(after[name + ".exp_avg_sq"], r.ExpAvgSq));
            }
            Assert.True(worst <= KernelUlpBound, $"step {step}: {worst} ulp");
        }
    }

    internal static AdamWStepScalars Scalars(AdamWOptions o, double lr, long step) => new(lr, o.Beta1, o.Beta2, o.WeightDecay, o.Epsilon, step);

    /// <summary>A gradient mixing magnitudes over six decades, with exact zeros, and all zeros every seventh step.</summary>
    internal static Tensor Gradient(long[] shape, int step, Generator generator)
    {
        if (step % 7 == 0) return zeros(shape);
        var scale = rand(shape, generator: generator).mul(Kept(6)).sub(Kept(6)).mul(Kept(Math.Log(10))).exp();
        var g = randn(shape, generator: generator).mul(scale);
        return g.mul(rand(shape, generator: generator).gt(Kept(0.1)));
    }

    /// <summary>Each parameter's value, gradient and moments before a step (zeros before the first).</summary>
    internal static Dictionary<string, (Tensor P, Tensor G, Tensor M, Tensor V)> Snapshot(AdamWOptimizer optimizer)
    {
        var state = optimizer.StateTensors();
        return optimizer.Parameters.ToDictionary(p => p.Name, p =>
        {
            var value = p.Parameter.detach().clone();
            var m = state.TryGetValue(p.Name + ".exp_avg", out var a) ? a : zeros(p.Parameter.shape);
            var v = state.TryGetValue(p.Name + ".exp_avg_sq", out var b) ? b : zeros(p.Parameter.shape);
            return (value, p.Parameter.grad!.clone(), m, v);
        });
    }

    private static AdamWTensors Four(Tensor p, Tensor g, Tensor m, Tensor v) => new(p, g, m, v);
}
