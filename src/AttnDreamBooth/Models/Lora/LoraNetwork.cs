using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Models.Lora;

/// <summary>
/// A set of LoRA adapters for a U-Net and/or a text encoder. The adapters are children of this module,
/// named by their kohya module names, so <c>state_dict()</c> holds <c>lora_unet_….lora_down.weight</c> etc. and
/// <c>parameters()</c> is exactly what LoRA training optimises; the models' own parameter names never change.
/// Lifecycle: <see cref="Install"/> (hooks on), <see cref="Merge"/> / <see cref="Unmerge"/> (update written into /
/// taken out of the weights), <see cref="Remove"/> (hooks off).
/// </summary>
public sealed class LoraNetwork : nn.Module
{
    private readonly List<LoraAdapter> _adapters = [];
    private readonly Dictionary<LoraComponent, Dictionary<string, nn.Module>> _modules = [];

    private LoraNetwork(nn.Module? unet, nn.Module? textEncoder) : base(nameof(LoraNetwork))
    {
        UNet = unet;
        TextEncoder = textEncoder;
    }

    /// <summary>The U-Net the adapters wrap layers of (null when there are none).</summary>
    public nn.Module? UNet { get; }

    /// <summary>The text encoder the adapters wrap layers of (null when there are none).</summary>
    public nn.Module? TextEncoder { get; }

    /// <summary>The adapters, U-Net first, each in module order.</summary>
    internal IReadOnlyList<LoraAdapter> Adapters => _adapters;

    /// <summary>The number of adapters (layers that carry one).</summary>
    public int Count => _adapters.Count;

    /// <summary>What loading a file found (null for a network made by <see cref="Create(nn.Module?, LoraUNetModules, nn.Module?, LoraTextEncoderModules, LoraOptions)"/>).</summary>
    internal LoraLoadReport? LoadReport { get; set; }

    /// <summary>Keys of the loaded file that match no layer of the given models, each with the reason (empty unless
    /// <see cref="LoraLoadOptions.ReportUnknownKeys"/> was set, and for a network that was not loaded from a file).</summary>
    public IReadOnlyDictionary<string, string> UnknownKeys => LoadReport?.UnknownKeys ?? EmptyKeys;

    private static readonly IReadOnlyDictionary<string, string> EmptyKeys = new Dictionary<string, string>();

    /// <summary>True while the adapters' hooks are on their layers.</summary>
    public bool IsInstalled => _adapters.Count > 0 && _adapters[0].IsInstalled;

    /// <summary>True while the updates are written into the layers' weights.</summary>
    public bool IsMerged => _adapters.Count > 0 && _adapters[0].IsMerged;

    /// <summary>New zero-update adapters on the selected module groups (not yet installed).</summary>
    public static LoraNetwork Create(nn.Module? unet, LoraUNetModules unetModules, nn.Module? textEncoder, LoraTextEncoderModules textEncoderModules,
        LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var targets = new List<(LoraComponent, string)>();
        if (unetModules != LoraUNetModules.None)
        {
            if (unet is null) throw new ArgumentNullException(nameof(unet), $"U-Net modules {unetModules} were requested without a U-Net.");
            targets.AddRange(LoraTargets.Select(unet, unetModules).Select(p => (LoraComponent.UNet, p)));
        }
        if (textEncoderModules != LoraTextEncoderModules.None)
        {
            if (textEncoder is null) throw new ArgumentNullException(nameof(textEncoder), $"text-encoder modules {textEncoderModules} were requested without a text encoder.");
            targets.AddRange(LoraTargets.Select(textEncoder, textEncoderModules).Select(p => (LoraComponent.TextEncoder, p)));
        }
        return Create(unet, textEncoder, targets, options);
    }

    /// <summary>New zero-update adapters on the given layers of the U-Net and of the text encoder, by diffusers module path
    /// (not yet installed).</summary>
    /// <exception cref="ArgumentException">A path names no layer, or a layer that cannot carry an adapter, or appears twice.</exception>
    public static LoraNetwork Create(nn.Module? unet, IEnumerable<string> unetModulePaths, nn.Module? textEncoder, IEnumerable<string> textEncoderModulePaths,
        LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(unetModulePaths);
        ArgumentNullException.ThrowIfNull(textEncoderModulePaths);
        return Create(unet, textEncoder,
            unetModulePaths.Select(p => (LoraComponent.UNet, p)).Concat(textEncoderModulePaths.Select(p => (LoraComponent.TextEncoder, p))).ToArray(), options);
    }

    /// <summary>New zero-update adapters on the given layers (component + diffusers module path; not yet installed).</summary>
    /// <exception cref="ArgumentException">A path names no layer, or a layer that cannot carry an adapter, or appears twice.</exception>
    internal static LoraNetwork Create(nn.Module? unet, nn.Module? textEncoder, IEnumerable<(LoraComponent Component, string ModulePath)> modules, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(modules);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var network = new LoraNetwork(unet, textEncoder);
        try
        {
            foreach (var (component, path) in modules)
            {
                var layer = network.Layer(component, path);
                var shape = LoraAdapter.Describe(component, path, layer);
                // A rank above min(in, out) cannot add expressiveness, only parameters.
                int rank = (int)Math.Min(options.Rank, Math.Min(shape.In * shape.KernelH * shape.KernelW, shape.Out));
                double? alpha = options.Alpha is { } a && rank != options.Rank ? a * rank / options.Rank : options.Alpha;
                network.Add(new LoraAdapter(component, path, layer, rank, alpha, options.Dropout));
            }
        }
        catch
        {
            network.Dispose();
            throw;
        }
        return network;
    }

    internal Module<Tensor, Tensor> Layer(LoraComponent component, string path)
    {
        var model = component == LoraComponent.UNet ? UNet : TextEncoder;
        if (model is null) throw LoraErrors.Target(path, $"names a {component} layer, but no {component} model was given.");
        if (!_modules.TryGetValue(component, out var byPath))
        {
            byPath = model.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
            _modules[component] = byPath;
        }
        if (!byPath.TryGetValue(path, out var module))
            throw LoraErrors.Target(path, $"the {component} has no module at this path.");
        if (module is not (TorchSharp.Modules.Linear or TorchSharp.Modules.Conv2d))
            throw LoraErrors.Target(path, $"is a {module.GetType().Name}; LoRA adapters wrap Linear and Conv2d layers only.");
        return (Module<Tensor, Tensor>)module;
    }

    internal void Add(LoraAdapter adapter)
    {
        if (_adapters.Any(a => a.Component == adapter.Component && a.ModulePath == adapter.ModulePath))
            throw LoraErrors.Target(adapter.ModulePath, "has two LoRA adapters.");
        if (_adapters.Any(a => a.KohyaName == adapter.KohyaName))
            throw LoraErrors.Target(adapter.KohyaName, "two module paths map to the same kohya name.");
        _adapters.Add(adapter);
        register_module(adapter.KohyaName, adapter);
    }

    /// <summary>
    /// Reads a LoRA file (kohya/A1111 or diffusers layout, detected per key) onto <paramref name="unet"/> and/or
    /// <paramref name="textEncoder"/>; the network is not installed yet. Keys that name nothing the models have are an
    /// error unless <see cref="LoraLoadOptions.ReportUnknownKeys"/> is set (then <see cref="UnknownKeys"/> lists them).
    /// </summary>
    /// <exception cref="ArgumentException">Unknown keys, incomplete modules or shapes that do not fit the layers.</exception>
    /// <exception cref="IO.InvalidWeightsException">The file is not a valid safetensors file, or a tensor exceeds
    /// <see cref="IO.ResourceLimits.MaxTensorBytes"/>.</exception>
    /// <param name="path">The LoRA file.</param>
    /// <param name="unet">The U-Net the U-Net adapters attach to (or null).</param>
    /// <param name="textEncoder">The text encoder the text adapters attach to (or null).</param>
    /// <param name="options">Strength and unknown-key handling.</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="IO.ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static LoraNetwork Load(string path, nn.Module? unet, nn.Module? textEncoder, LoraLoadOptions? options = null, IO.ResourceLimits? limits = null)
    {
        using var scope = IO.ResourceLimits.Use(limits);
        return LoraFile.Load(path, unet, textEncoder, options);
    }

    /// <summary>Writes the adapters to <paramref name="path"/> (atomically) in <paramref name="format"/>. Tensors keep the
    /// adapters' dtype (float32 unless converted); kohya files get each module's <c>.alpha</c> and kohya's informational
    /// metadata; diffusers files fold alpha / r into <c>up</c>, as diffusers 0.24 stores it.</summary>
    public void Save(string path, LoraFileFormat format, IReadOnlyDictionary<string, string>? metadata = null) =>
        LoraFile.Save(this, path, format, metadata);

    /// <summary>Asynchronous <see cref="Save"/> (the write runs off the caller's thread).</summary>
    public Task SaveAsync(string path, LoraFileFormat format, IReadOnlyDictionary<string, string>? metadata = null, CancellationToken ct = default) =>
        LoraFile.SaveAsync(this, path, format, metadata, ct);

    /// <summary>Hooks every adapter onto its layer. Attention processors and map recording are untouched: the hooks sit on
    /// the projection layers, below the processors.</summary>
    public void Install()
    {
        if (IsInstalled) throw new InvalidOperationException("The LoRA network is already installed.");
        var done = new List<LoraAdapter>();
        try
        {
            foreach (var a in _adapters)
            {
                var layer = Layer(a.Component, a.ModulePath);
                // The library's models compute such a convolution without calling the module (a libtorch bug,
                // NarrowChannelConvolution), so the adapter's hook would never run and it would silently do nothing.
                if (layer is Conv2d conv && NarrowChannelConvolution.Reroutes(conv))
                    throw LoraErrors.Target(a.ModulePath, $"{NarrowChannelConvolution.Reason(conv)} take a workaround path that LoRA cannot hook.");
                a.Install(layer);
                done.Add(a);
                // Gradient checkpointing recomputes the U-Net's blocks and must differentiate the adapters inside them too.
                HostOf(a)?.AttachHookedParameters(a.ModulePath, [a.DownWeight, a.UpWeight]);
            }
        }
        catch
        {
            foreach (var a in done) RemoveAdapter(a);
            throw;
        }
    }

    /// <summary>Takes every hook off. Merged updates stay in the weights (call <see cref="Unmerge"/> first to undo them).</summary>
    public void Remove()
    {
        foreach (var a in _adapters) RemoveAdapter(a);
    }

    private void RemoveAdapter(LoraAdapter adapter)
    {
        if (adapter.IsInstalled) HostOf(adapter)?.DetachHookedParameters(adapter.ModulePath);
        adapter.Remove();
    }

    private IHookedParameterHost? HostOf(LoraAdapter adapter) =>
        (adapter.Component == LoraComponent.UNet ? UNet : TextEncoder) as IHookedParameterHost;

    /// <summary>Starts every adapter afresh from one seeded generator (down uniform in ±1/√fan_in, up zero), in module
    /// order, so a training run's adapters are the same on every run with the same seed.</summary>
    internal void ResetParameters(ulong seed)
    {
        using var generator = new Generator(seed);
        foreach (var a in _adapters) a.ResetParameters(generator);
    }

    /// <summary>The generator every adapter's dropout draws from (null: libtorch's global one).</summary>
    internal Generator? DropoutGenerator
    {
        get => _adapters.Count == 0 ? null : _adapters[0].DropoutGenerator;
        set
        {
            foreach (var a in _adapters) a.DropoutGenerator = value;
        }
    }

    /// <summary>Writes every update into its layer's weight at <paramref name="scale"/> (default: each adapter's
    /// <see cref="LoraAdapter.Scale"/>); installs the network first if needed.</summary>
    public void Merge(double? scale = null)
    {
        if (!IsInstalled) Install();
        foreach (var a in _adapters) a.Merge(scale);
    }

    /// <summary>Takes the merged updates out of the weights again.</summary>
    public void Unmerge()
    {
        foreach (var a in _adapters.Where(a => a.IsMerged)) a.Unmerge();
    }

    /// <summary>Sets the runtime scale of every adapter (the text encoder's and the U-Net's, like diffusers'
    /// <c>cross_attention_kwargs={"scale": s}</c> with <c>lora_scale</c>).</summary>
    public void SetScale(double scale)
    {
        foreach (var a in _adapters) a.Scale = scale;
    }

    /// <summary>Sets the runtime scale of the adapters of one component.</summary>
    internal void SetScale(LoraComponent component, double scale)
    {
        foreach (var a in _adapters.Where(a => a.Component == component)) a.Scale = scale;
    }

    /// <summary>The adapter on <paramref name="modulePath"/> of <paramref name="component"/>, or null.</summary>
    internal LoraAdapter? Find(LoraComponent component, string modulePath) =>
        _adapters.FirstOrDefault(a => a.Component == component && a.ModulePath == modulePath);

    /// <summary>Number of adapter parameters (elements).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) Remove();
        base.Dispose(disposing);
    }
}
