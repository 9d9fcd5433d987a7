using AttnDreamBooth.Schedulers;
using AttnDreamBooth.StableDiffusion;
using AttnDreamBooth.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Training;

/// <summary>
/// A denoiser training loop written the way docs/custom-training.md describes it, from public blocks only (the way the
/// Shapes pretraining is written): it learns, and a run stopped after a checkpoint and continued from it ends with the
/// same weights, bit for bit, as a run that never stopped.
/// </summary>
public sealed class CustomTrainingLoopTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "adb-custom-loop-" + Guid.NewGuid().ToString("N"));

    private sealed record LoopState(int FormatVersion, long Step, IReadOnlyList<double> Losses);

    private sealed class Loop : IDisposable
    {
        private readonly StableDiffusionComponents _model = StableDiffusionComponents.Load(TestPaths.TinySd1);
        private readonly ITrainingNoiseScheduler _scheduler;
        private readonly List<(string Name, Parameter Parameter)> _parameters;
        private readonly AdamWOptimizer _optimizer;
        private readonly Generator _noise = new(101);
        private readonly Generator _timesteps = new(102);
        private readonly Tensor _images;
        private readonly Tensor _hidden;

        public Loop()
        {
            _scheduler = DiffusionSamplers.ForTraining(_model.SchedulerConfig);
            _parameters = _model.UNet.named_parameters().Select(p => ("unet." + p.name, p.parameter)).ToList();
            foreach (var (_, p) in _parameters) p.requires_grad = true;
            _model.UNet.train();
            _optimizer = new AdamWOptimizer(_parameters, AdamWOptions.Default, learningRate: 1e-3);
            // The same two "photos" every step, so the loss has something to learn.
            _images = rand([2, 3, 64, 64], generator: new Generator(7)).mul(Kept(2)).sub(Kept(1));
            using (no_grad()) _hidden = _model.TextEncoder.Forward(_model.Tokenizer.EncodeToTensor(["a red star", "a blue circle"])).LastHiddenState;
        }

        public List<double> Losses { get; private set; } = [];

        public void Step() => Losses.Add(TensorRoots.Run(() =>
        {
            using var scope = NewDisposeScope();
            Tensor latents;
            using (no_grad())
            {
                using var posterior = _model.Vae.Encode(_images);
                latents = posterior.Sample(_noise).mul(Kept(_model.Vae.ScalingFactor));
            }
            var noise = randn(latents.shape, generator: _noise);
            var timesteps = _scheduler.SampleTimesteps((int)latents.shape[0], _timesteps);
            var noisy = _scheduler.AddNoise(latents, noise, timesteps);
            var target = _scheduler.GetTrainingTarget(latents, noise, timesteps);
            _optimizer.ZeroGrad();
            var mse = _model.UNet.call(noisy, timesteps, _hidden).sub(target).pow(Kept(2)).mean();
            mse.backward();
            _optimizer.Step();
            return (double)mse.item<float>();
        }));

        public string Save(string root)
        {
            var tensors = _optimizer.StateTensors().ToDictionary(e => "optimizer." + e.Key, e => e.Value);
            foreach (var (name, p) in _parameters) tensors[name] = p.detach().cpu();
            tensors["rng.noise"] = _noise.get_state();
            tensors["rng.timesteps"] = _timesteps.get_state();
            try
            {
                return CheckpointFiles.Write(root, $"checkpoint-{_optimizer.StepCount:D7}", new LoopState(1, _optimizer.StepCount, Losses), tensors,
                    format: "pt", keep: 2, prunable: _ => true);
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }

        public void Resume(string root)
        {
            string folder = CheckpointFiles.List(root)[0];
            var state = CheckpointFiles.ReadDescription<LoopState>(folder, "loop checkpoint");
            CheckpointFiles.RequireFormatVersion(folder, state.FormatVersion);
            var tensors = CheckpointFiles.ReadTensors(folder);
            try
            {
                using (no_grad())
                    foreach (var (name, p) in _parameters) p.copy_(tensors[name]);
                _optimizer.LoadState(tensors.Where(e => e.Key.StartsWith("optimizer.", StringComparison.Ordinal))
                    .ToDictionary(e => e.Key["optimizer.".Length..], e => e.Value), state.Step);
                _noise.set_state(tensors["rng.noise"]);
                _timesteps.set_state(tensors["rng.timesteps"]);
                Losses = [.. state.Losses];
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }

        public Tensor[] Weights() => _parameters.Select(p => p.Parameter.detach().clone()).ToArray();

        public void Dispose()
        {
            _optimizer.Dispose();
            _scheduler.Dispose();
            _images.Dispose();
            _hidden.Dispose();
            _noise.Dispose();
            _timesteps.Dispose();
            _model.Dispose();
        }
    }

    [Fact]
    public void ALoopOfPublicBlocksLearnsAndResumesBitIdentically()
    {
        const int steps = 8, stopAfter = 3;
        Tensor[] straight;
        List<double> straightLosses;
        using (var loop = new Loop())
        {
            for (int i = 0; i < steps; i++) loop.Step();
            straight = loop.Weights();
            straightLosses = loop.Losses;
        }

        using (var first = new Loop())
        {
            for (int i = 0; i < stopAfter; i++) first.Step();
            first.Save(_root);
        }
        Tensor[] resumed;
        List<double> resumedLosses;
        using (var second = new Loop())
        {
            second.Resume(_root);
            Assert.Equal(stopAfter, second.Losses.Count);
            for (int i = stopAfter; i < steps; i++) second.Step();
            resumed = second.Weights();
            resumedLosses = second.Losses;
        }

        try
        {
            Assert.Equal(straightLosses, resumedLosses);
            Assert.Equal(straight.Length, resumed.Length);
            for (int i = 0; i < straight.Length; i++) Assert.Equal(straight[i].data<float>().ToArray(), resumed[i].data<float>().ToArray());
            // It learns: the same images, fewer errors as steps go (noise and timesteps vary, so compare halves).
            Assert.All(straightLosses, l => Assert.True(double.IsFinite(l)));
            Assert.True(straightLosses.Skip(steps / 2).Average() < straightLosses.Take(steps / 2).Average(),
                $"losses did not fall: {string.Join(", ", straightLosses.Select(l => l.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)))}");
        }
        finally
        {
            foreach (var t in straight.Concat(resumed)) t.Dispose();
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
