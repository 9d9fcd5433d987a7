namespace AttnDreamBooth.IO;

/// <summary>
/// A Stable Diffusion model in the diffusers folder layout (<c>model_index.json</c>, <c>unet/</c>, <c>vae/</c>,
/// <c>text_encoder/</c>, <c>tokenizer/</c>, <c>scheduler/</c>). Accepts the pipeline folder itself or a
/// Hugging Face cache entry (<c>models--org--name</c>, resolved through <c>refs/main</c> to
/// <c>snapshots/&lt;hash&gt;/</c>).
/// </summary>
internal sealed class DiffusersFolder
{
    private DiffusersFolder(string root, ModelIndex index)
    {
        Root = root;
        Index = index;
    }

    /// <summary>The resolved pipeline folder (the snapshot folder for a cache entry).</summary>
    public string Root { get; }

    /// <summary>The parsed <c>model_index.json</c>.</summary>
    public ModelIndex Index { get; }

    /// <summary>Opens a pipeline folder or Hugging Face cache entry.</summary>
    /// <exception cref="ModelConfigException">The folder is missing, is not a diffusers pipeline, or the cache entry
    /// has no usable snapshot.</exception>
    public static DiffusersFolder Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string root = ResolveRoot(Path.GetFullPath(path));
        return new DiffusersFolder(root, ModelIndex.Load(Path.Combine(root, "model_index.json")));
    }

    /// <summary>The folder of a component such as <c>unet</c>.</summary>
    /// <exception cref="ModelConfigException">model_index.json does not list it, or its folder is missing.</exception>
    public string ComponentPath(string component)
    {
        string folder = Path.Combine(Root, component);
        if (!Index.Components.ContainsKey(component))
            throw new ModelConfigException(Path.Combine(Root, "model_index.json"), component, "the pipeline has no such component");
        if (!Directory.Exists(folder)) throw new ModelConfigException(folder, null, $"model_index.json lists '{component}' but its folder is missing");
        return folder;
    }

    /// <summary>The configuration file of a component (<c>scheduler_config.json</c> for schedulers,
    /// <c>config.json</c> otherwise).</summary>
    public string ConfigPath(string component)
    {
        string folder = ComponentPath(component);
        string name = component == "scheduler" || Index.Components[component].ClassName.EndsWith("Scheduler", StringComparison.Ordinal)
            ? "scheduler_config.json"
            : "config.json";
        string path = Path.Combine(folder, name);
        if (!File.Exists(path)) throw new ModelConfigException(path, null, "the component's configuration file is missing");
        return path;
    }

    /// <summary>The safetensors files of a component (see <see cref="WeightFiles.Resolve"/>).</summary>
    public IReadOnlyList<string> WeightPaths(string component, string? variant = null) => WeightFiles.Resolve(ComponentPath(component), variant);

    /// <summary>Resolves the folder a user pointed at to the folder that holds model_index.json.</summary>
    internal static string ResolveRoot(string path)
    {
        if (!Directory.Exists(path)) throw new ModelConfigException(path, null, "the model folder does not exist");
        if (File.Exists(Path.Combine(path, "model_index.json"))) return path;
        string snapshots = Path.Combine(path, "snapshots");
        if (Directory.Exists(snapshots))
        {
            string refFile = Path.Combine(path, "refs", "main");
            if (File.Exists(refFile))
            {
                string hash = File.ReadAllText(refFile).Trim();
                if (hash.Length == 0 || hash.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || hash is "." or "..")
                    throw new ModelConfigException(refFile, null, "does not hold a snapshot hash");
                string snapshot = Path.Combine(snapshots, hash);
                if (File.Exists(Path.Combine(snapshot, "model_index.json"))) return snapshot;
                throw new ModelConfigException(snapshot, null, "refs/main names this snapshot, but it holds no model_index.json");
            }
            var candidates = Directory.EnumerateDirectories(snapshots).Where(d => File.Exists(Path.Combine(d, "model_index.json"))).ToArray();
            if (candidates.Length == 1) return candidates[0];
            if (candidates.Length > 1)
                throw new ModelConfigException(snapshots, null, $"holds {candidates.Length} snapshots and no refs/main to choose one; pass the snapshot folder itself");
        }
        throw new ModelConfigException(path, null, "is not a diffusers pipeline folder (no model_index.json) nor a Hugging Face cache entry with a snapshot");
    }
}
