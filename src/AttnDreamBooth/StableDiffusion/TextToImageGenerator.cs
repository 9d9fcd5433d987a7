using AttnDreamBooth.Imaging;
using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.Text;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// Classifier-free-guided text-to-image sampling with DDIM or DPM-Solver++, optionally recording the
/// cross-attention heatmaps of chosen tokens.
/// </summary>
internal static class TextToImageGenerator
{
    /// <summary>Generates <see cref="GenerationOptions.BatchSize"/> images for one prompt (already expanded).</summary>
    public static IReadOnlyList<GeneratedImage> Generate(StableDiffusionComponents c, ConceptEmbedding? concept, string prompt,
        GenerationOptions options, IReadOnlyDictionary<string, long> heatmapTokenIds, CancellationToken ct,
        IProgress<GenerationProgress>? progress = null)
    {
        options.Validate();
        var device = c.Device;
        int width = options.Width ?? c.DefaultResolution;
        int height = options.Height ?? c.DefaultResolution;
        // Explicit sizes are bounded by GenerationOptions.Validate; the model's own size comes from an untrusted sample_size.
        if (width > 4096 || height > 4096)
            throw new ArgumentOutOfRangeException(nameof(options), $"The model's default resolution is {width}×{height} pixels (U-Net sample_size × VAE factor), above the 4096-pixel limit of GenerationOptions.Width and Height; set them explicitly.");
        int factor = c.Vae.DownsampleFactor;
        int unetFactor = 1 << (c.UNet.Config.BlockOutChannels.Count - 1);
        if (width % (factor * unetFactor) != 0 || height % (factor * unetFactor) != 0)
            throw new ArgumentException($"Width and height must be multiples of {factor * unetFactor} for this model; got {width}x{height}.", nameof(options));
        int batch = options.BatchSize;
        bool guided = options.GuidanceScale > 1.0;

        using var outer = NewDisposeScope();
        using var _ = no_grad();
        var condIds = c.Tokenizer.EncodeToTensor([prompt], device);
        var cond = Encode(c, concept, condIds).expand(batch, -1, -1);
        Tensor hidden = cond;
        if (guided)
        {
            var uncond = Encode(c, concept, c.Tokenizer.EncodeToTensor([options.NegativePrompt], device)).expand(batch, -1, -1);
            hidden = cat([uncond, cond], 0);
        }

        using IDiffusionSampler sampler = SamplerSelection.Create(options, c.SchedulerConfig);
        sampler.SetTimesteps(options.Steps);
        var modelTimesteps = sampler.ModelTimesteps;
        int totalSteps = sampler.Timesteps.Count;

        int latentH = height / factor, latentW = width / factor;
        var noise = new List<Tensor>();
        for (int i = 0; i < batch; i++)
        {
            using var g = new Generator((ulong)(options.Seed + i));
            noise.Add(randn([1, c.UNet.Config.InChannels, latentH, latentW], dtype: float32, generator: g));
        }
        var latents = cat(noise, 0).to(device).mul(Kept(sampler.InitNoiseSigma));
        var stepGenerator = new Generator((ulong)options.Seed);

        // Heatmap recording: the positions of the requested tokens in the prompt, recorded on every cross-attention layer,
        // followed by the prompt's words (between the start and end tokens), the denominator of each token's word share.
        // A token the prompt does not contain has no attention to show: the images are rendered without its map.
        var tokens = heatmapTokenIds.Keys.Where(t => FindPosition(condIds, heatmapTokenIds[t]) >= 0).ToArray();
        var positions = tokens.Select(t => FindPosition(condIds, heatmapTokenIds[t])).ToArray();
        var words = tokens.Length > 0 ? WordPositions(condIds, c.Tokenizer.EosTokenId) : [];
        var wordShares = new WordShareAccumulator(positions, words);
        using var store = new AttentionMapStore();
        // Generation may run in the middle of training (validation renders) while the training recorder is
        // installed: sample with the default kernels and put the caller's processors back afterwards.
        var callerProcessors = c.UNet.AttentionProcessors;
        c.UNet.ResetAttentionProcessors();
        IDisposable? attachment = null;
        Tensor? heatSum = null;
        var heatSumByHeight = new SortedDictionary<int, Tensor>(AttentionHeatmaps.DescendingHeights);
        int heatCount = 0;
        int res = options.HeatmapResolution;
        if (tokens.Length > 0)
        {
            attachment = c.UNet.Attach(store, AttentionTokenSelection.Positions([.. positions, .. words]));
        }
        try
        {
            int stepNumber = 0;
            for (int i = 0; i < totalSteps; i++)
            {
                long t = sampler.Timesteps[i];
                double modelT = modelTimesteps[i];
                ct.ThrowIfCancellationRequested();
                stepNumber++;
                using var scope = NewDisposeScope();
                store.Clear();
                var input = guided ? cat([latents, latents], 0) : latents;
                input = sampler.ScaleModelInput(input, t);
                // Fractional timesteps (k-diffusion samplers) go to the model as float32, as diffusers passes them.
                var timestep = modelT == t ? tensor(t, dtype: int64, device: device) : tensor((float)modelT, dtype: float32, device: device);
                var prediction = c.UNet.call(input, timestep, hidden);
                if (guided)
                {
                    var parts = prediction.chunk(2, 0);
                    prediction = parts[0].add(parts[1].sub(parts[0]).mul(Kept(options.GuidanceScale)), One);
                }
                var next = sampler is DdimScheduler ddim && options.Eta > 0
                    ? ddim.Step(prediction, t, latents, options.Eta, generator: stepGenerator).PrevSample
                    : sampler.Step(prediction, t, latents, stepGenerator).PrevSample;
                latents = next.MoveToOuterDisposeScope();
                // One reduction per step: a NaN never recovers, and decoding it would return a black image as if all were well.
                if (!latents.isfinite().all().item<bool>()) throw NonFiniteValuesException.Sampling(stepNumber, t, prompt);
                if (tokens.Length > 0 && store.Count > 0)
                {
                    // Only the conditional half of a guided batch shows where the prompt's tokens attend.
                    var conditional = store.Maps.Select(m => (Probabilities: guided ? m.Probabilities.narrow(0, batch, batch) : m.Probabilities, m.Height, m.Width)).ToArray();
                    var layers = conditional.Select(m => (m.Probabilities.narrow(-1, 0, tokens.Length), m.Height, m.Width)).ToArray();
                    var (averaged, byHeight) = AttentionHeatmaps.AggregateByHeight(layers, res);
                    foreach (var (p, h, _) in conditional) wordShares.Add(p, h);
                    heatSum = heatSum is null ? averaged.MoveToOuterDisposeScope() : heatSum.add_(averaged, One);
                    foreach (var (h, map) in byHeight)
                        heatSumByHeight[h] = heatSumByHeight.TryGetValue(h, out var sumH) ? sumH.add_(map, One) : map.MoveToOuterDisposeScope();
                    heatCount++;
                    store.Clear();
                }
                if (options.OnStep is { } onStep)
                {
                    using var preview = latents.detach().clone();
                    onStep(new GenerationStep(i + 1, totalSteps, modelT, preview));
                }
                progress?.Report(new GenerationProgress(0, batch, batch, i + 1, totalSteps));
            }
        }
        finally
        {
            attachment?.Dispose();
            c.UNet.SetAttentionProcessor(callerProcessors);
        }

        var images = c.Vae.Decode(latents.div(Kept(c.Vae.ScalingFactor)).to_type(c.Vae.parameters().First().dtype)).to_type(float32).cpu();
        var results = new List<GeneratedImage>();
        for (int i = 0; i < batch; i++)
        {
            var maps = new Dictionary<string, AttentionHeatmap>(StringComparer.Ordinal);
            if (heatSum is not null)
            {
                var normalized = HeatmapRenderer.Normalize(heatSum[i].div(Kept(heatCount))).cpu().contiguous();
                var normalizedByHeight = heatSumByHeight.Select(e => (Height: e.Key, Maps: HeatmapRenderer.Normalize(e.Value[i].div(Kept(heatCount))).cpu().contiguous())).ToArray();
                for (int k = 0; k < tokens.Length; k++)
                {
                    var byResolution = new SortedDictionary<int, AttentionHeatmap>(AttentionHeatmaps.DescendingHeights);
                    foreach (var (h, m) in normalizedByHeight) byResolution[h] = new AttentionHeatmap(tokens[k], res, m[k].contiguous().data<float>().ToArray());
                    maps[tokens[k]] = new AttentionHeatmap(tokens[k], res, normalized[k].contiguous().data<float>().ToArray())
                    {
                        WordShares = wordShares.Shares(i, k),
                        ByLayerResolution = byResolution,
                    };
                }
            }
            results.Add(new GeneratedImage(prompt, options.Seed + i, RgbImageConversions.FromTensor(images[i]), maps));
        }
        stepGenerator.Dispose();
        return results;
    }

    private static Tensor Encode(StableDiffusionComponents c, ConceptEmbedding? concept, Tensor ids) =>
        concept is null
            ? c.TextEncoder.Forward(ids).LastHiddenState
            : concept.Encode(ids).LastHiddenState;

    /// <summary>The positions after the start token and before the first end token: the prompt's words.</summary>
    private static int[] WordPositions(Tensor ids, long eosTokenId)
    {
        var row = ids[0].cpu().data<long>().ToArray();
        int end = Array.IndexOf(row, eosTokenId, 1);
        if (end < 0) end = row.Length;
        return Enumerable.Range(1, Math.Max(0, end - 1)).ToArray();
    }

    /// <summary>The token's first position in the prompt, or -1.</summary>
    private static int FindPosition(Tensor ids, long tokenId) => Array.IndexOf(ids[0].cpu().data<long>().ToArray(), tokenId);
}
