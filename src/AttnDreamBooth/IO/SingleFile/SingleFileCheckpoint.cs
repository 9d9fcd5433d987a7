using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// An original-layout (LDM / CompVis / Stability AI) Stable Diffusion 1.x or 2.x <c>.safetensors</c> checkpoint, opened
/// against the diffusers configs that describe it. Every key is accounted for on open: mapped to a component through
/// the generated <see cref="SingleFileKeyMap"/>, or skipped because only original files hold it (logged), or an error.
/// <see cref="OpenComponent"/> gives each component under its diffusers names, ready for <see cref="StateDictLoader"/>.
/// </summary>
/// <remarks>The file carries no configuration: the architecture (and, for a pipeline, prediction type, image size,
/// scheduler and tokenizer, see <see cref="SingleFileModelSettings"/>) comes from the caller.</remarks>
internal sealed class SingleFileCheckpoint : IDisposable
{
    private static readonly string[] PickleExtensions = [".ckpt", ".pt", ".pth", ".bin", ".pkl"];

    private readonly SafetensorsFile _file;
    private readonly Dictionary<string, Dictionary<string, SingleFileComponentSource.Entry>> _components;

    private SingleFileCheckpoint(SafetensorsFile file, SingleFileKeyMap keyMap, Dictionary<string, Dictionary<string, SingleFileComponentSource.Entry>> components,
        IReadOnlyList<SingleFileKeyResolution> skipped, int emaCount, bool usesEma)
    {
        _file = file;
        KeyMap = keyMap;
        _components = components;
        SkippedKeys = skipped;
        EmaTensorCount = emaCount;
        UsesEmaWeights = usesEma;
    }

    /// <summary>The checkpoint file.</summary>
    public string FilePath => _file.FilePath;

    /// <summary>The family (detected or given).</summary>
    public StableDiffusionFamily Family => KeyMap.Family;

    /// <summary>The key map the file was resolved with.</summary>
    public SingleFileKeyMap KeyMap { get; }

    /// <summary>The components the file holds and the architecture describes.</summary>
    public IReadOnlyList<string> Components => SingleFileComponents.All.Where(_components.ContainsKey).ToArray();

    /// <summary>Stored keys that were skipped (only-in-original keys, EMA copies when not used, keys ignored by request).</summary>
    public IReadOnlyList<SingleFileKeyResolution> SkippedKeys { get; }

    /// <summary>Number of <c>model_ema.*</c> U-Net copies in the file.</summary>
    public int EmaTensorCount { get; }

    /// <summary>Whether the U-Net is read from the EMA copies.</summary>
    public bool UsesEmaWeights { get; }

    internal static bool IsPickle(string path) => PickleExtensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>Detects the family from the text-encoder prefix of the keys, or returns null when the file has no text encoder.</summary>
    /// <exception cref="InvalidWeightsException">The file holds both text-encoder layouts, or is an SDXL-style file.</exception>
    public static StableDiffusionFamily? DetectFamily(IEnumerable<string> keys, string filePath)
    {
        bool sd1 = false, sd2 = false, sdxl = false;
        foreach (string key in keys)
        {
            sd1 |= key.StartsWith(SingleFileComponents.Sd1TextPrefix, StringComparison.Ordinal);
            sd2 |= key.StartsWith(SingleFileComponents.Sd2TextPrefix, StringComparison.Ordinal);
            sdxl |= key.StartsWith("conditioner.embedders.", StringComparison.Ordinal);
        }
        if (sdxl) throw InvalidWeightsException.SingleFile(filePath, "holds conditioner.embedders.* keys (an SDXL-style checkpoint); only SD 1.x and 2.x single files are supported");
        if (sd1 && sd2)
            throw InvalidWeightsException.SingleFile(filePath, $"holds both {SingleFileComponents.Sd1TextPrefix}* (SD 1.x) and {SingleFileComponents.Sd2TextPrefix}* (SD 2.x) keys; the family is ambiguous");
        return sd1 ? StableDiffusionFamily.Sd1 : sd2 ? StableDiffusionFamily.Sd2 : null;
    }

    /// <summary>Opens <paramref name="path"/> and resolves every key against <paramref name="architecture"/>.</summary>
    /// <exception cref="InvalidWeightsException">The file is a pickle (<c>.ckpt</c>, <c>.pt</c>, …).</exception>
    /// <exception cref="InvalidWeightsException">The file is not valid safetensors.</exception>
    /// <exception cref="InvalidWeightsException">The family cannot be determined, keys are left over, blocks of the
    /// architecture are missing, or shapes do not fit the configs.</exception>
    public static SingleFileCheckpoint Open(string path, SingleFileArchitecture architecture, SingleFileLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(architecture);
        options ??= new SingleFileLoadOptions();
        if (IsPickle(path)) throw InvalidWeightsException.Pickle(Path.GetFullPath(path));
        var file = SafetensorsFile.Open(path);
        try
        {
            return Resolve(file, architecture, options);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static SingleFileCheckpoint Resolve(SafetensorsFile file, SingleFileArchitecture architecture, SingleFileLoadOptions options)
    {
        var logger = options.Logger ?? NullLogger.Instance;
        string path = file.FilePath;
        var detected = DetectFamily(file.Names, path);
        if (detected is { } d && options.Family is { } given && d != given)
            throw InvalidWeightsException.SingleFile(path, $"the text-encoder keys say {d} but {given} was requested");
        var family = detected ?? options.Family ?? (architecture.TextEncoder is null
            ? StableDiffusionFamily.Sd1
            : throw InvalidWeightsException.SingleFile(path, "holds no text encoder (cond_stage_model.*), so its family cannot be detected; set SingleFileLoadOptions.Family or leave the text encoder out of the architecture"));
        var keyMap = SingleFileKeyMap.Create(family, architecture);

        var components = keyMap.Components.ToDictionary(c => c, _ => new Dictionary<string, SingleFileComponentSource.Entry>(StringComparer.Ordinal), StringComparer.Ordinal);
        var skipped = new List<SingleFileKeyResolution>();
        var unknown = new List<string>();
        var ema = new HashSet<string>(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (string key in file.Names)
        {
            var resolution = keyMap.Resolve(key);
            switch (resolution.Kind)
            {
                case SingleFileKeyKind.Mapped:
                    var mapping = resolution.Mapping!;
                    var entry = file.Entries[key];
                    long[] shape;
                    try
                    {
                        shape = mapping.DiffusersShape(entry.Shape);
                    }
                    catch (InvalidWeightsException ex)
                    {
                        problems.Add(ex.Message);
                        continue;
                    }
                    CheckTextWidth(mapping, entry.Shape, architecture, problems);
                    var target = components[mapping.Component];
                    for (int part = 0; part < mapping.DiffusersKeys.Count; part++)
                    {
                        var value = new SingleFileComponentSource.Entry(key, mapping.Op, part, mapping.DiffusersKeys.Count, shape, entry.ScalarType);
                        if (!target.TryAdd(mapping.DiffusersKeys[part], value))
                            problems.Add($"{key} and {target[mapping.DiffusersKeys[part]].StoredKey} both map to {mapping.Component}/{mapping.DiffusersKeys[part]}");
                    }
                    break;
                case SingleFileKeyKind.Ema:
                    ema.Add(key);
                    break;
                case SingleFileKeyKind.Ignored:
                    skipped.Add(resolution);
                    break;
                default:
                    if (options.IgnoreKey?.Invoke(key) == true) skipped.Add(resolution with { Reason = "ignored by request" });
                    else unknown.Add(key);
                    break;
            }
        }
        if (unknown.Count > 0)
        {
            throw InvalidWeightsException.SingleFile(path,
                $"{unknown.Count} keys fit no rule of the {family} layout generated from the configs (wrong configs, another model type, or extras to pass to IgnoreKey): " +
                string.Join(", ", unknown.Take(10)) + (unknown.Count > 10 ? ", …" : ""));
        }
        foreach (string component in keyMap.Components)
        {
            string prefix = keyMap.PrefixOf(component);
            if (components[component].Count == 0)
            {
                problems.Add($"the architecture includes the {component} but the file has no {prefix}* weights");
                continue;
            }
            foreach (string module in keyMap.RequiredModules(component))
            {
                bool present = module.EndsWith('.') ? file.Names.Any(n => n.StartsWith(module, StringComparison.Ordinal)) : file.Contains(module);
                if (!present) problems.Add($"the {component} config implies {module}* but the file has no such key (the config does not describe this file)");
            }
        }
        if (problems.Count > 0)
            throw InvalidWeightsException.SingleFile(path, $"{problems.Count} problems: " + string.Join("; ", problems.Take(10)) + (problems.Count > 10 ? "; …" : ""));

        bool useEma = options.UseEmaWeights;
        if (useEma)
        {
            if (!components.TryGetValue(SingleFileComponents.UNet, out var unet))
                throw InvalidWeightsException.SingleFile(path, "EMA weights were requested but the architecture has no U-Net");
            var missing = new List<string>();
            foreach (var (name, entry) in unet.ToArray())
            {
                string emaKey = SingleFileKeyMap.EmaKeyOf(entry.StoredKey);
                if (!file.Contains(emaKey)) missing.Add(emaKey);
                else if (!file.Entries[emaKey].Shape.SequenceEqual(file.Entries[entry.StoredKey].Shape))
                    throw InvalidWeightsException.SingleFile(path, $"{emaKey} has shape [{string.Join(", ", file.Entries[emaKey].Shape)}], unlike {entry.StoredKey}");
                else unet[name] = entry with { StoredKey = emaKey, ScalarType = file.Entries[emaKey].ScalarType };
            }
            if (missing.Count > 0)
                throw InvalidWeightsException.SingleFile(path, $"EMA weights were requested but {missing.Count} U-Net tensors have no EMA copy (a pruned file?), e.g. {missing[0]}");
            var used = new HashSet<string>(unet.Values.Select(e => e.StoredKey), StringComparer.Ordinal);
            foreach (string key in ema.Where(k => !used.Contains(k))) skipped.Add(new SingleFileKeyResolution(key, SingleFileKeyKind.Ema, null, "EMA tensor of no U-Net weight"));
            SingleFileLog.UsingEma(logger, path, used.Count);
        }
        else
        {
            foreach (string key in ema) skipped.Add(new SingleFileKeyResolution(key, SingleFileKeyKind.Ema, null, "EMA copy, not requested"));
            if (ema.Count > 0) SingleFileLog.IgnoringEma(logger, path, ema.Count);
        }
        var originalOnly = skipped.Where(s => s.Kind == SingleFileKeyKind.Ignored && s.Reason != "ignored by request").ToArray();
        if (originalOnly.Length > 0) SingleFileLog.IgnoringOriginalOnly(logger, path, originalOnly.Length, Examples(originalOnly));
        var byRequest = skipped.Where(s => s.Reason == "ignored by request").ToArray();
        if (byRequest.Length > 0) SingleFileLog.IgnoringByRequest(logger, path, byRequest.Length, Examples(byRequest));
        return new SingleFileCheckpoint(file, keyMap, components, skipped, ema.Count, useEma);
    }

    private static string Examples(SingleFileKeyResolution[] keys) =>
        string.Join(", ", keys.Take(5).Select(k => k.OriginalKey)) + (keys.Length > 5 ? ", …" : "");

    private static void CheckTextWidth(SingleFileKeyMapping mapping, long[] shape, SingleFileArchitecture architecture, List<string> problems)
    {
        if (mapping.Component != SingleFileComponents.TextEncoder || architecture.TextEncoder is not { } text) return;
        long width = text.HiddenSize;
        if (mapping.Op == SingleFileOp.SplitDim0 && shape[0] != 3 * width)
            problems.Add($"{mapping.OriginalKey} has {shape[0]} rows but the text-encoder config's hidden_size {width} needs {3 * width}");
        if (mapping.DiffusersKeys[0] == "text_model.embeddings.token_embedding.weight" && (shape.Length != 2 || shape[1] != width))
            problems.Add($"{mapping.OriginalKey} is [{string.Join(", ", shape)}] but the text-encoder config's hidden_size is {width} (an SD 1.x config for an SD 2.x file, or the reverse?)");
    }

    /// <summary>One component under its diffusers names (a view over the open file; do not use after disposing the checkpoint).</summary>
    /// <exception cref="ArgumentException">The component is not in <see cref="Components"/>.</exception>
    public SingleFileComponentSource OpenComponent(string component)
    {
        ArgumentNullException.ThrowIfNull(component);
        return _components.TryGetValue(component, out var entries)
            ? new SingleFileComponentSource(component, _file, entries)
            : throw new ArgumentException($"'{FilePath}' has no component '{component}' in this architecture (available: {string.Join(", ", Components)}).", nameof(component));
    }

    /// <summary>Writes the components as a diffusers folder: the weights of each component from this file and every other
    /// file (configs, tokenizer, scheduler, model_index.json) copied from <paramref name="configFolder"/>.</summary>
    /// <param name="configFolder">A diffusers folder with the configs that describe this file (weights not needed).</param>
    /// <param name="outputFolder">Created if missing; existing component weight files are replaced.</param>
    public void WriteDiffusersFolder(string configFolder, string outputFolder)
    {
        var source = DiffusersFolder.Open(configFolder);
        Directory.CreateDirectory(outputFolder);
        foreach (string file in Directory.EnumerateFiles(source.Root, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(source.Root, file);
            string extension = Path.GetExtension(file);
            if (extension is ".safetensors" or ".bin" or ".ckpt" or ".pt" or ".pth" || file.EndsWith(".safetensors.index.json", StringComparison.Ordinal)) continue;
            string destination = Path.Combine(outputFolder, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination, overwrite: true);
        }
        foreach (string component in Components)
        {
            string name = component == SingleFileComponents.TextEncoder ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
            string folder = Path.Combine(outputFolder, component);
            Directory.CreateDirectory(folder);
            OpenComponent(component).WriteSafetensors(Path.Combine(folder, name));
        }
    }

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();
}
