using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>
/// Writes a pretraining checkpoint as a Stable Diffusion model in the diffusers folder layout (<c>model_index.json</c>,
/// <c>unet/</c>, <c>vae/</c>, <c>text_encoder/</c>, <c>tokenizer/</c>, <c>scheduler/</c>), weights in half precision by
/// default, plus <c>manifest.json</c>. The folder is written atomically.
/// </summary>
public static class ShapesModelExporter
{
    /// <summary>The tokenizer files copied into <c>tokenizer/</c>.</summary>
    public static IReadOnlyList<string> TokenizerFiles { get; } = ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"];

    /// <summary>Exports <paramref name="checkpoint"/> (a checkpoint folder or a folder of checkpoints: the newest) to <paramref name="outputFolder"/>.</summary>
    /// <param name="checkpoint">The checkpoint.</param>
    /// <param name="tokenizerFolder">The CLIP tokenizer the model was trained with.</param>
    /// <param name="outputFolder">The model folder to (re)write.</param>
    /// <param name="dtype">Float16 (default) or Float32 for the floating-point weights.</param>
    /// <param name="allowIncomplete">Export even if the U-Net phase has not finished (it must have started).</param>
    /// <param name="notes">Free-form key/value notes for the manifest (e.g. the command that trained it).</param>
    /// <param name="lastWeights">When the run kept a weight average (<see cref="PretrainingRecipe.UNetEmaDecay"/>), export the
    /// last weights instead of the average (which is the default). The manifest says which were written.</param>
    /// <returns>The files written and their hashes.</returns>
    /// <exception cref="ModelConfigException">No checkpoint, or it has not reached (or finished) the U-Net phase, or its weight average is missing or broken.</exception>
    public static IReadOnlyList<ManifestFile> Export(string checkpoint, string tokenizerFolder, string outputFolder,
        torch.ScalarType dtype = torch.ScalarType.Float16, bool allowIncomplete = false, IReadOnlyDictionary<string, string>? notes = null,
        bool lastWeights = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(outputFolder);
        ArgumentException.ThrowIfNullOrWhiteSpace(tokenizerFolder);
        if (dtype is not (torch.ScalarType.Float16 or torch.ScalarType.Float32 or torch.ScalarType.BFloat16))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "weights are written as float16, bfloat16 or float32");
        foreach (string file in TokenizerFiles)
        {
            if (!File.Exists(Path.Combine(tokenizerFolder, file))) throw new ModelConfigException(Path.Combine(tokenizerFolder, file), null, "the tokenizer file is missing");
        }
        var (folder, state) = PretrainingCheckpoint.ReadState(checkpoint);
        string jsonPath = Path.Combine(folder, PretrainingCheckpoint.JsonFile);
        var recipe = ReadRecipe(state, jsonPath);
        if (state.Phase != PretrainingPhase.UNet) throw new ModelConfigException(jsonPath, "phase", "the VAE phase has not finished; there is no text encoder or U-Net to export");
        if (!allowIncomplete && !state.IsComplete(recipe))
            throw new ModelConfigException(jsonPath, "step_in_phase", $"the U-Net phase is at step {state.StepInPhase} of {recipe.UNetSteps}; finish (resume) the run or allow an incomplete export");

        var architecture = recipe.Architecture with { Vae = recipe.Architecture.Vae with { ScalingFactor = state.ScalingFactor } };
        using var networks = new ShapesNetworks(architecture, recipe.Seed);
        var tensors = PretrainingCheckpoint.ReadTensors(folder);
        bool averaged = recipe.UNetEmaDecay > 0 && !lastWeights;
        try
        {
            networks.Load(tensors);
            if (averaged) LoadAverage(networks, tensors, Path.Combine(folder, PretrainingCheckpoint.StateFile));
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        string dtypeName = dtype switch { torch.ScalarType.Float16 => "float16", torch.ScalarType.BFloat16 => "bfloat16", _ => "float32" };
        IReadOnlyList<ManifestFile> files = [];
        AtomicFile.WriteDirectory(outputFolder, temp =>
        {
            AtomicFile.WriteAllText(Path.Combine(temp, "model_index.json"), DiffusersConfigFiles.ModelIndex(recipe.Scheduler));
            AtomicFile.WriteAllText(Path.Combine(temp, "scheduler", "scheduler_config.json"), DiffusersConfigFiles.Scheduler(recipe.Scheduler));
            AtomicFile.WriteAllText(Path.Combine(temp, "vae", "config.json"), DiffusersConfigFiles.Vae(architecture.Vae));
            AtomicFile.WriteAllText(Path.Combine(temp, "unet", "config.json"), DiffusersConfigFiles.UNet(architecture.UNet));
            AtomicFile.WriteAllText(Path.Combine(temp, "text_encoder", "config.json"), DiffusersConfigFiles.TextEncoder(architecture.TextEncoder, dtypeName));
            WriteWeights(Path.Combine(temp, "vae", "diffusion_pytorch_model.safetensors"), networks.Vae, dtype);
            WriteWeights(Path.Combine(temp, "unet", "diffusion_pytorch_model.safetensors"), networks.UNet, dtype);
            WriteWeights(Path.Combine(temp, "text_encoder", "model.safetensors"), networks.TextEncoder, dtype);
            Directory.CreateDirectory(Path.Combine(temp, "tokenizer"));
            foreach (string file in TokenizerFiles) File.Copy(Path.Combine(tokenizerFolder, file), Path.Combine(temp, "tokenizer", file));
            files = ShapesModelManifest.HashFiles(temp);
            AtomicFile.WriteAllText(Path.Combine(temp, ShapesModelManifest.FileName), ShapesModelManifest.Build(recipe, state, dtypeName, files, notes,
                recipe.UNetEmaDecay > 0 ? (averaged ? "average" : "last") : null));
        });
        return files;
    }

    /// <summary>The recipe stored in a checkpoint's state.</summary>
    /// <exception cref="ModelConfigException">It is missing or unreadable.</exception>
    public static PretrainingRecipe ReadRecipe(PretrainingCheckpointState state, string jsonPath)
    {
        ArgumentNullException.ThrowIfNull(state);
        PretrainingRecipe recipe;
        try
        {
            recipe = PretrainingRecipe.FromJson(state.RecipeJson);
        }
        catch (ArgumentException ex)
        {
            throw new ModelConfigException(jsonPath, "recipe_json", $"is not a valid recipe ({ex.Message})", ex);
        }
        if (recipe.Fingerprint() != state.RecipeFingerprint)
            throw new ModelConfigException(jsonPath, "recipe_json", "does not reproduce the recorded fingerprint (the recipe format changed)");
        return recipe;
    }

    // The averaged parameters replace the last ones; buffers (which are not trained) stay as loaded.
    private static void LoadAverage(ShapesNetworks networks, IReadOnlyDictionary<string, torch.Tensor> tensors, string stateFile)
    {
        using var _ = torch.no_grad();
        var parameters = ShapesNetworks.NamedParameters(networks.TextEncoder, ShapesNetworks.TextEncoderPrefix)
            .Concat(ShapesNetworks.NamedParameters(networks.UNet, ShapesNetworks.UNetPrefix));
        foreach (var (name, parameter) in parameters)
        {
            if (!tensors.TryGetValue(WeightAverage.Prefix + name, out var average))
                throw new ModelConfigException(stateFile, WeightAverage.Prefix + name, "the run keeps a weight average (unet_ema_decay > 0) but the checkpoint lacks this tensor");
            if (!average.shape.SequenceEqual(parameter.shape))
                throw new ModelConfigException(stateFile, WeightAverage.Prefix + name, $"is [{string.Join(", ", average.shape)}], the model's parameter [{string.Join(", ", parameter.shape)}]");
            parameter.copy_(average);
        }
    }

    private static void WriteWeights(string path, torch.nn.Module module, torch.ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var tensors = module.state_dict().ToDictionary(p => p.Key, p => p.Value.is_floating_point() ? p.Value.detach().to_type(dtype) : p.Value.detach(), StringComparer.Ordinal);
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }
}
