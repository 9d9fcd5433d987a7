using System.Text.Json;
using System.Text.Json.Nodes;
using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Schedulers;
using AttnDreamBooth.Text;
using TorchSharp;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// A complete diffusers pipeline folder of the concept, laid out as <c>StableDiffusionPipeline.save_pretrained</c>
/// writes it: <c>model_index.json</c>; <c>unet/</c> (fine-tuned), <c>vae/</c> and <c>text_encoder/</c> written from the
/// live modules; the text encoder's token table grown to hold the new token with its learned row written in (and
/// <c>vocab_size</c> set to match); <c>tokenizer/</c> with the token in <c>added_tokens.json</c> (which every transformers
/// version reads); <c>scheduler/</c> and any other component folder (safety checker, feature extractor) copied from the
/// base. Configs lose <c>_name_or_path</c> when it is a local path.
/// </summary>
internal static class DiffusersConceptExport
{
    // Tokens such as "<cat-toy>" stay readable (the default encoder writes \u003C).

    private static readonly string[] LocalPathKeys = ["_name_or_path", "name_or_path"];

    private static readonly string[] Written = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"];

    public static void Write(ExportContext context, string temp)
    {
        var c = context.Components;
        var dtype = context.Options.WeightsDType;
        var folder = c.Folder;
        var index = ReadJson(Path.Combine(folder.Root, "model_index.json"));
        int step = 0;
        const int steps = 6;

        context.Report("writing unet", step++, steps);
        WriteComponent(temp, "unet", "diffusion_pytorch_model.safetensors", c.UNet.state_dict(), dtype, folder.ConfigPath("unet"), null, context.CancellationToken);

        context.Report("writing vae", step++, steps);
        WriteComponent(temp, "vae", "diffusion_pytorch_model.safetensors", c.Vae.state_dict(), dtype, folder.ConfigPath("vae"), null, context.CancellationToken);

        context.Report("writing text_encoder", step++, steps);
        using (var scope = torch.NewDisposeScope())
        {
            var state = ConceptExporter.TextEncoderState(c.TextEncoder, context.Embedding, grow: true);
            long rows = state[ConceptExporter.TokenEmbeddingKey].shape[0];
            WriteComponent(temp, "text_encoder", "model.safetensors", state, dtype, folder.ConfigPath("text_encoder"),
                config => config["vocab_size"] = rows, context.CancellationToken);
        }

        context.Report("writing tokenizer", step++, steps);
        WriteTokenizer(c.Tokenizer, folder.ComponentPath("tokenizer"), Path.Combine(temp, "tokenizer"));

        context.Report("writing scheduler", step++, steps);
        string scheduler = Path.Combine(temp, "scheduler");
        CopyFolder(folder.ComponentPath("scheduler"), scheduler);
        // A single-file base resolves its prediction type apart from the config folder; the pipeline must keep it.
        string schedulerConfig = Path.Combine(scheduler, "scheduler_config.json");
        var schedulerJson = ReadJson(schedulerConfig);
        string prediction = (string)SchedulerConfigKeys.ToDiffusersValue(c.SchedulerConfig.PredictionType)!;
        if (schedulerJson["prediction_type"]?.GetValue<string>() != prediction) schedulerJson["prediction_type"] = prediction;
        WriteJson(schedulerConfig, schedulerJson);

        context.Report("copying the other components", step++, steps);
        foreach (var (name, value) in index.ToArray())
        {
            if (name.StartsWith('_') || Written.Contains(name) || value is not JsonArray { Count: 2 } pair || pair[0] is null) continue;
            string source = Path.Combine(folder.Root, name);
            // A component the base folder lists but does not hold (a config folder next to a single file) cannot be loaded.
            if (Directory.Exists(source)) CopyFolder(source, Path.Combine(temp, name));
            else index[name] = new JsonArray((JsonNode?)null, (JsonNode?)null);
        }
        WriteJson(Path.Combine(temp, "model_index.json"), index);
        context.Report("copying the other components", steps, steps);
    }

    private static void WriteComponent(string temp, string component, string weightsFile, IReadOnlyDictionary<string, torch.Tensor> state,
        torch.ScalarType dtype, string configPath, Action<JsonObject>? editConfig, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        string folder = Path.Combine(temp, component);
        Directory.CreateDirectory(folder);
        var config = ReadJson(configPath);
        editConfig?.Invoke(config);
        if (config["torch_dtype"] is not null) config["torch_dtype"] = TorchDTypeName(dtype);
        WriteJson(Path.Combine(folder, Path.GetFileName(configPath)), config);
        using var scope = torch.NewDisposeScope();
        var converted = state.Where(p => !ClipTextModel.IsIgnorableKey(p.Key)).ToDictionary(
            p => p.Key,
            p => p.Value.is_floating_point() && p.Value.dtype != dtype ? p.Value.detach().to_type(dtype) : p.Value.detach(),
            StringComparer.Ordinal);
        SafetensorsWriter.Write(Path.Combine(folder, weightsFile), converted, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>The base tokenizer's files plus every added token in <c>added_tokens.json</c> ({token: id}).</summary>
    private static void WriteTokenizer(ClipTokenizer tokenizer, string baseFolder, string target)
    {
        CopyFolder(baseFolder, target);
        if (tokenizer.AddedTokens.Count == 0) return;
        var added = new JsonObject();
        foreach (string token in tokenizer.AddedTokens)
        {
            tokenizer.TryGetTokenId(token, out int id);
            added[token] = id;
        }
        WriteJson(Path.Combine(target, "added_tokens.json"), added);
    }

    /// <summary>Copies a folder byte for byte, except JSON configs that name a local path (<c>_name_or_path</c>,
    /// <c>name_or_path</c>), which are written without it.</summary>
    private static void CopyFolder(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (string file in Directory.EnumerateFiles(source))
        {
            string destination = Path.Combine(target, Path.GetFileName(file));
            // vocab.json is large and exact: only small configs are parsed.
            if (Path.GetExtension(file) == ".json" && new FileInfo(file).Length < 1 << 20 && TryReadObject(file) is { } json && LocalPathKeys.Any(k => IsLocalPath(json, k)))
                WriteJson(destination, json);
            else File.Copy(file, destination);
        }
        foreach (string directory in Directory.EnumerateDirectories(source)) CopyFolder(directory, Path.Combine(target, Path.GetFileName(directory)));
    }

    private static JsonObject? TryReadObject(string path)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static JsonObject ReadJson(string path) =>
        TryReadObject(path) ?? throw new ModelConfigException(path, null, "is not a JSON object");

    private static bool IsLocalPath(JsonObject json, string key) =>
        json[key] is JsonValue value && value.GetValueKind() == JsonValueKind.String && Path.IsPathRooted(value.GetValue<string>());

    private static void WriteJson(string path, JsonObject json)
    {
        foreach (string key in LocalPathKeys.Where(k => IsLocalPath(json, k))) json.Remove(key);
        AtomicFile.WriteAllText(path, JsonFiles.Serialize(json) + "\n");
    }

    /// <summary>PyTorch's name of an export dtype (<c>torch_dtype</c> in diffusers configs).</summary>
    internal static string TorchDTypeName(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float16 => "float16",
        torch.ScalarType.BFloat16 => "bfloat16",
        _ => "float32",
    };
}
