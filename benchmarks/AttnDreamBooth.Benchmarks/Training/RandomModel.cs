using System.Diagnostics;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Models.UNet;
using AttnDreamBooth.Models.Vae;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// Writes a real-size Stable Diffusion folder in the diffusers layout with random weights, from the configs of
/// <c>tests/fixtures/real-size/&lt;model&gt;</c> and the real CLIP vocabulary of the tiny fixtures. No weights can be
/// downloaded here; with this folder, a whole run of the CLI (<c>train</c>, <c>generate</c>) can be measured at real
/// size under <c>/usr/bin/time -v</c> — loading, latent caching, releases and reloads included, which the one-step
/// <c>memory-table</c> rows do not see.
/// <code>
/// random-model --out DIR [--model stable-diffusion-2-1-base | CONFIG-FOLDER] [--seed 0]
/// </code>
/// </summary>
internal static class RandomModel
{
    public const string Command = "random-model";
    private const string Usage = "--out DIR [--model stable-diffusion-2-1-base | CONFIG-FOLDER] [--seed 0]";
    private static readonly string[] TokenizerFiles = ["vocab.json", "merges.txt", "special_tokens_map.json"];

    public static int Run(string[] args)
    {
        var options = CommandOptions.Parse(args, Command, Usage, "--out", "--model", "--seed");
        if (options?.Text("--out") is not { } output)
        {
            if (options is not null) Console.Error.WriteLine($"--out is required. Usage: {Command} {Usage}");
            return 2;
        }
        string model = options.Text("--model") ?? "stable-diffusion-2-1-base";
        int seed = options.Integer("--seed") ?? 0;
        // A folder of configs (e.g. a tiny fixture's, to try the command in seconds) or the name of a real-size manifest.
        string configs = Directory.Exists(model) ? model : Path.Combine(RealSizeUNet.RepoRoot(), "tests", "fixtures", "real-size", model);
        string vocabulary = Path.Combine(RealSizeUNet.RepoRoot(), "tests", "fixtures", "tiny-sd2", "pipeline", "tokenizer");
        if (!File.Exists(Path.Combine(configs, "unet", "config.json")))
        {
            Console.Error.WriteLine($"No real-size manifest '{configs}'.");
            return 2;
        }
        var watch = Stopwatch.StartNew();
        AtomicFile.WriteDirectory(output, temp =>
        {
            foreach (string file in new[] { "model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json", "tokenizer/tokenizer_config.json" })
            {
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(temp, file))!);
                File.Copy(Path.Combine(configs, file), Path.Combine(temp, file));
            }
            Directory.CreateDirectory(Path.Combine(temp, "scheduler"));
            string scheduler = Path.Combine(configs, "scheduler", "scheduler_config.json");
            if (File.Exists(scheduler)) File.Copy(scheduler, Path.Combine(temp, "scheduler", "scheduler_config.json"));
            else File.WriteAllText(Path.Combine(temp, "scheduler", "scheduler_config.json"), BaseScheduler);
            foreach (string file in TokenizerFiles) File.Copy(Path.Combine(vocabulary, file), Path.Combine(temp, "tokenizer", file));
            // One component at a time, so the writer never holds more than the U-Net's 3.5 GB.
            manual_seed(seed);
            using (var unet = new UNet2DConditionModel(UNetConfig.Load(Path.Combine(configs, "unet", "config.json")), CPU))
                Write(Path.Combine(temp, "unet", "diffusion_pytorch_model.safetensors"), unet);
            using (var vae = new AutoencoderKL(AutoencoderKLConfig.Load(Path.Combine(configs, "vae", "config.json")), CPU))
                Write(Path.Combine(temp, "vae", "diffusion_pytorch_model.safetensors"), vae);
            using (var encoder = new ClipTextModel(ClipTextConfig.Load(Path.Combine(configs, "text_encoder", "config.json")), CPU))
            {
                // transformers' from-scratch initialisation: the default Linear/Embedding init gives unit-variance token
                // embeddings, far from a trained encoder's scale.
                ClipTextInitialization.Apply(encoder);
                Write(Path.Combine(temp, "text_encoder", "model.safetensors"), encoder);
            }
        });
        Console.WriteLine($"Wrote a random-weight '{model}' (seed {seed}) to {output} in {watch.Elapsed.TotalSeconds:F0} s.");
        return 0;
    }

    // The manifests of the 512-px models carry no scheduler folder; this is stable-diffusion-2-1-base's (and 1.5's):
    // PNDM over the scaled-linear betas, epsilon prediction.
    private const string BaseScheduler = """
        {
          "_class_name": "PNDMScheduler",
          "beta_end": 0.012,
          "beta_schedule": "scaled_linear",
          "beta_start": 0.00085,
          "clip_sample": false,
          "num_train_timesteps": 1000,
          "prediction_type": "epsilon",
          "set_alpha_to_one": false,
          "skip_prk_steps": true,
          "steps_offset": 1,
          "trained_betas": null
        }
        """;

    private static void Write(string path, nn.Module module)
    {
        using var scope = NewDisposeScope();
        var tensors = module.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().contiguous(), StringComparer.Ordinal);
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }
}
