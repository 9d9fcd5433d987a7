using System.Globalization;
using AttnDreamBooth.IO;
using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Lora;

/// <summary>
/// Reads and writes LoRA files in the kohya/A1111 and diffusers layouts (<see cref="LoraFileFormat"/>) for SD 1.x and
/// 2.x U-Nets and CLIP text encoders. Loading resolves every key against the given models and reports keys that match
/// nothing (a typed exception by default; see <see cref="LoraLoadOptions.ReportUnknownKeys"/>), never dropping them silently.
/// </summary>
internal static class LoraFile
{
    private const string KohyaDown = ".lora_down.weight";
    private const string KohyaUp = ".lora_up.weight";
    private const string KohyaAlpha = ".alpha";

    /// <summary>Reads <paramref name="path"/> into a new (not yet installed) <see cref="LoraNetwork"/> on the layers of
    /// <paramref name="unet"/> and <paramref name="textEncoder"/>, each adapter with the file's rank and alpha.</summary>
    /// <exception cref="InvalidWeightsException">The file is not a valid safetensors file.</exception>
    /// <exception cref="InvalidWeightsException">Keys match no layer (unless reported), a module lacks its up or down weight, or
    /// shapes do not fit the layer.</exception>
    public static LoraNetwork Load(string path, nn.Module? unet, nn.Module? textEncoder, LoraLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new LoraLoadOptions();
        using var file = SafetensorsFile.Open(path);
        var maps = new Dictionary<LoraComponent, LoraKeyMap>();
        if (unet is not null) maps[LoraComponent.UNet] = LoraKeyMap.For(LoraComponent.UNet, unet);
        if (textEncoder is not null) maps[LoraComponent.TextEncoder] = LoraKeyMap.For(LoraComponent.TextEncoder, textEncoder);

        var unknown = new List<(string Key, string Reason)>();
        var formats = new HashSet<LoraFileFormat>();
        var groups = new Dictionary<(LoraComponent, string), Parts>();
        foreach (string key in file.Names)
        {
            var parsed = LoraKeys.Parse(key);
            if (parsed is null)
            {
                unknown.Add((key, "not a LoRA key of a known layout (kohya lora_unet_/lora_te_ or diffusers unet./text_encoder.)"));
                continue;
            }
            var (component, name, part, format) = parsed.Value;
            if (!maps.TryGetValue(component, out var map))
            {
                unknown.Add((key, $"belongs to the {component}, which was not given"));
                continue;
            }
            string modulePath;
            if (format == LoraFileFormat.Kohya)
            {
                if (!map.TryResolve(name, out modulePath))
                {
                    unknown.Add((key, map.Ambiguous.Contains(name)
                        ? "the kohya name fits two module paths"
                        : $"no Linear/Conv2d layer of the {component} has this kohya name"));
                    continue;
                }
            }
            else
            {
                modulePath = name;
                if (!map.TryResolve(LoraComponentNames.KohyaName(component, name), out var check) || check != name)
                {
                    unknown.Add((key, $"the {component} has no Linear/Conv2d layer '{name}'"));
                    continue;
                }
            }
            formats.Add(format);
            if (!groups.TryGetValue((component, modulePath), out var parts)) groups[(component, modulePath)] = parts = new Parts();
            string? previous = part switch { LoraPart.Down => parts.Down, LoraPart.Up => parts.Up, _ => parts.Alpha };
            if (previous is not null) throw LoraErrors.File(path, key, $"module '{modulePath}' is also given by '{previous}'.");
            switch (part)
            {
                case LoraPart.Down: parts.Down = key; break;
                case LoraPart.Up: parts.Up = key; break;
                default: parts.Alpha = key; break;
            }
            parts.Format = format;
        }
        if (unknown.Count > 0 && !options.ReportUnknownKeys)
        {
            throw LoraErrors.File(path, unknown[0].Key,
                $"{unknown.Count} key(s) match no layer of the given models: " +
                string.Join("; ", unknown.Take(8).Select(u => $"'{u.Key}' ({u.Reason})")) + (unknown.Count > 8 ? "; …" : "") +
                ". Pass LoraLoadOptions { ReportUnknownKeys = true } to load the rest.");
        }
        if (groups.Count == 0) throw LoraErrors.File(path, null, "holds no LoRA module for the given models.");

        var network = LoraNetworkFactory.Empty(unet, textEncoder);
        try
        {
            foreach (var ((component, modulePath), parts) in groups
                         .OrderBy(g => g.Key.Item1)
                         .ThenBy(g => g.Key.Item2, StringComparer.Ordinal))
            {
                if (parts.Down is null || parts.Up is null)
                    throw LoraErrors.File(path, parts.Down ?? parts.Up ?? parts.Alpha, $"module '{modulePath}' has no {(parts.Down is null ? "down" : "up")} weight.");
                network.Add(ReadAdapter(file, network, component, modulePath, parts, options.Scale));
            }
            network.LoadReport = new LoraLoadReport(Path.GetFullPath(path), formats,
                network.Adapters.Count(a => a.Component == LoraComponent.UNet), network.Adapters.Count(a => a.Component == LoraComponent.TextEncoder),
                unknown.ToDictionary(u => u.Key, u => u.Reason, StringComparer.Ordinal), file.Metadata);
        }
        catch
        {
            network.Dispose();
            throw;
        }
        return network;
    }

    private static LoraAdapter ReadAdapter(SafetensorsFile file, LoraNetwork network, LoraComponent component, string modulePath, Parts parts, double scale)
    {
        var layer = network.Layer(component, modulePath);
        using var scope = NewDisposeScope();
        var down = file.ReadTensor(parts.Down!, ScalarType.Float32);
        var up = file.ReadTensor(parts.Up!, ScalarType.Float32);
        if (down.dim() is not (2 or 4) || down.shape[0] <= 0)
            throw LoraErrors.File(file.FilePath, parts.Down, $"down weight must be [r, in] or [r, in, kh, kw], got [{string.Join(", ", down.shape)}].");
        int rank = checked((int)down.shape[0]);
        double alpha = rank;
        if (parts.Alpha is not null)
        {
            var a = file.ReadTensor(parts.Alpha, ScalarType.Float64);
            if (a.numel() != 1) throw LoraErrors.File(file.FilePath, parts.Alpha, $"alpha must hold one value, got shape [{string.Join(", ", a.shape)}].");
            alpha = a.flatten()[0].item<double>();
            if (!double.IsFinite(alpha) || alpha <= 0) throw LoraErrors.File(file.FilePath, parts.Alpha, $"alpha must be positive and finite, got {alpha.ToString(CultureInfo.InvariantCulture)}.");
        }
        // 1×1 convs and linear layers are the same map: files written for one layout of proj_in/proj_out (SD 1.x conv,
        // SD 2.x linear) load into the other.
        var adapter = new LoraAdapter(component, modulePath, layer, rank, alpha);
        try
        {
            CopyInto(file.FilePath, parts.Down!, adapter.DownWeight, down);
            CopyInto(file.FilePath, parts.Up!, adapter.UpWeight, up);
            adapter.Scale = scale;
        }
        catch
        {
            adapter.Dispose();
            throw;
        }
        return adapter;
    }

    private static void CopyInto(string filePath, string key, Tensor target, Tensor source)
    {
        var value = source;
        if (!value.shape.SequenceEqual(target.shape) && value.numel() == target.numel())
        {
            bool squeezable = (value.dim() == 4 && value.shape[2] == 1 && value.shape[3] == 1 && target.dim() == 2)
                || (target.dim() == 4 && target.shape[2] == 1 && target.shape[3] == 1 && value.dim() == 2);
            if (squeezable) value = value.reshape(target.shape);
        }
        if (!value.shape.SequenceEqual(target.shape))
            throw LoraErrors.File(filePath, key, $"shape [{string.Join(", ", source.shape)}] does not fit the layer (expected [{string.Join(", ", target.shape)}]).");
        using (no_grad()) target.copy_(value.to_type(target.dtype));
    }

    /// <summary>Writes the network's adapters to <paramref name="path"/> (atomically) in <paramref name="format"/>.
    /// Tensors keep the adapters' dtype (float32 unless converted); kohya files get each module's <c>.alpha</c> and
    /// kohya's informational metadata; diffusers files fold alpha / r into <c>up</c>, as diffusers 0.24 stores it.</summary>
    /// <param name="network">The adapters.</param>
    /// <param name="path">The file.</param>
    /// <param name="format">The layout.</param>
    /// <param name="metadata">Extra <c>__metadata__</c> entries.</param>
    /// <param name="dtype">Write the tensors in this type (null: the adapters' own); the network is not changed.</param>
    public static void Save(LoraNetwork network, string path, LoraFileFormat format, IReadOnlyDictionary<string, string>? metadata = null, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (network.Adapters.Count == 0) throw new ArgumentException("The LoRA network has no adapters to save.", nameof(network));
        using var scope = NewDisposeScope();
        var tensors = ToStateDict(network, format);
        if (dtype is { } type)
        {
            // kohya's alpha stays a float32 scalar, as the files A1111 and ComfyUI are written with.
            foreach (var key in tensors.Keys.Where(k => !k.EndsWith(KohyaAlpha, StringComparison.Ordinal)).ToArray()) tensors[key] = tensors[key].to_type(type);
        }
        var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
        if (format == LoraFileFormat.Kohya)
        {
            meta["ss_network_module"] = network.Adapters.Any(a => a.Kind == LoraLayerKind.ConvKxK) ? "lycoris.kohya" : "networks.lora";
            var ranks = network.Adapters.Select(a => a.Rank).Distinct().ToArray();
            var alphas = network.Adapters.Select(a => a.Alpha).Distinct().ToArray();
            meta["ss_network_dim"] = ranks.Length == 1 ? ranks[0].ToString(CultureInfo.InvariantCulture) : "Dynamic";
            meta["ss_network_alpha"] = alphas.Length == 1 ? alphas[0].ToString("R", CultureInfo.InvariantCulture) : "Dynamic";
        }
        if (metadata is not null)
        {
            foreach (var (k, v) in metadata) meta[k] = v;
        }
        SafetensorsWriter.Write(path, tensors, meta);
    }

    /// <summary>Asynchronous <see cref="Save"/> (the write runs off the caller's thread).</summary>
    public static Task SaveAsync(LoraNetwork network, string path, LoraFileFormat format, IReadOnlyDictionary<string, string>? metadata = null,
        CancellationToken ct = default) => Task.Run(() => Save(network, path, format, metadata), ct);

    /// <summary>The tensors a file of <paramref name="format"/> holds for <paramref name="network"/> (detached copies; the
    /// caller owns them).</summary>
    public static Dictionary<string, Tensor> ToStateDict(LoraNetwork network, LoraFileFormat format)
    {
        ArgumentNullException.ThrowIfNull(network);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var a in network.Adapters)
        {
            var down = a.DownWeight.detach().clone();
            var up = a.UpWeight.detach().clone();
            switch (format)
            {
                case LoraFileFormat.Kohya:
                    tensors[a.KohyaName + KohyaDown] = down;
                    tensors[a.KohyaName + KohyaUp] = up;
                    tensors[a.KohyaName + KohyaAlpha] = tensor((float)a.Alpha, ScalarType.Float32);
                    break;
                case LoraFileFormat.Diffusers:
                    string prefix = LoraComponentNames.DiffusersPrefix(a.Component) + a.ModulePath
                        + (a.Component == LoraComponent.UNet ? ".lora." : ".lora_linear_layer.");
                    tensors[prefix + "down.weight"] = down;
                    tensors[prefix + "up.weight"] = a.Alpha == a.Rank ? up : up.mul(Kept(a.Alpha / a.Rank)).to_type(up.dtype);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown LoRA file format.");
            }
        }
        return tensors;
    }

    private sealed class Parts
    {
        public string? Down;
        public string? Up;
        public string? Alpha;
        public LoraFileFormat Format;
    }
}
