using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Lora;

/// <summary>
/// One LoRA adapter for one linear or convolutional layer, addressed by the layer's diffusers module path. Its
/// parameters are named as in kohya files (<c>lora_down.weight</c>, <c>lora_up.weight</c>); the layer's own weights
/// keep their names. Installed, it adds <c>Scale · (Alpha / Rank) · up(down(dropout(x)))</c> to the layer's output
/// through a forward hook, so the wrapped model's code, attention processors and map recording are unchanged.
/// Merged, the same update is written into the layer's weight and the hook adds nothing.
/// </summary>
internal sealed class LoraAdapter : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> lora_down;
    private readonly Module<Tensor, Tensor> lora_up;
    private readonly LayerBinding _binding = new();
    private double? _mergedScale;

    /// <summary>Creates an adapter shaped for <paramref name="layer"/> (a <see cref="TorchSharp.Modules.Linear"/> or an ungrouped
    /// zero-padded <see cref="TorchSharp.Modules.Conv2d"/>), in float32 on the layer's device. <c>lora_down</c> gets PyTorch's default
    /// layer initialisation and <c>lora_up</c> zeros, so a new adapter does not change the layer's output.</summary>
    /// <param name="component">The model the layer belongs to.</param>
    /// <param name="modulePath">The layer's diffusers module path (e.g. <c>mid_block.attentions.0.proj_in</c>).</param>
    /// <param name="layer">The layer to shape the adapter for (it is not wrapped until <see cref="Install"/>).</param>
    /// <param name="rank">Inner width r.</param>
    /// <param name="alpha">kohya's alpha (update factor alpha / r); null = r.</param>
    /// <param name="dropout">Input dropout probability while training.</param>
    public LoraAdapter(LoraComponent component, string modulePath, Module<Tensor, Tensor> layer, int rank, double? alpha = null, double dropout = 0.0)
        : this(component, modulePath, Describe(component, modulePath, layer), rank, alpha, dropout)
    {
    }

    private LoraAdapter(LoraComponent component, string modulePath, LayerShape shape, int rank, double? alpha, double dropout) : base(nameof(LoraAdapter))
    {
        new LoraOptions(rank, alpha, dropout).Validate();
        Component = component;
        ModulePath = modulePath;
        Shape = shape;
        Rank = rank;
        Alpha = alpha ?? Rank;
        Dropout = dropout;
        if (shape.Kind == LoraLayerKind.Linear)
        {
            lora_down = Linear(shape.In, Rank, hasBias: false, device: shape.Device);
            lora_up = Linear(Rank, shape.Out, hasBias: false, device: shape.Device);
        }
        else
        {
            lora_down = Conv2d(shape.In, Rank, (shape.KernelH, shape.KernelW), stride: shape.Stride, padding: shape.Padding, dilation: shape.Dilation,
                bias: false, device: shape.Device);
            lora_up = Conv2d(Rank, shape.Out, (1, 1), bias: false, device: shape.Device);
            Nnpack.TurnOff();
        }
        using (no_grad()) UpWeight.zero_();
        RegisterComponents();
    }

    /// <summary>The model the wrapped layer belongs to.</summary>
    public LoraComponent Component { get; }

    /// <summary>The wrapped layer's diffusers module path.</summary>
    public string ModulePath { get; }

    /// <summary>The kohya module name (<c>lora_unet_…</c> / <c>lora_te_…</c>).</summary>
    public string KohyaName => LoraComponentNames.KohyaName(Component, ModulePath);

    /// <summary>Linear, 1×1 conv or k×k conv.</summary>
    public LoraLayerKind Kind => Shape.Kind;

    /// <summary>Inner width r.</summary>
    public int Rank { get; }

    /// <summary>kohya's alpha; the update is multiplied by <see cref="Alpha"/> / <see cref="Rank"/>.</summary>
    public double Alpha { get; }

    /// <summary>Input dropout probability while training.</summary>
    public double Dropout { get; }

    /// <summary>Runtime strength s (default 1). Cannot change while merged.</summary>
    public double Scale
    {
        get;
        set
        {
            if (!double.IsFinite(value)) throw new ArgumentOutOfRangeException(nameof(Scale), value, "LoRA scale must be finite.");
            if (IsMerged) throw new InvalidOperationException($"LoRA '{KohyaName}' is merged into its layer; unmerge it before changing the scale.");
            field = value;
        }
    } = 1.0;

    /// <summary>True while the adapter's forward hook is on its layer.</summary>
    public bool IsInstalled => _binding.Hook is not null;

    /// <summary>True while the update is written into the layer's weight.</summary>
    public bool IsMerged => _mergedScale is not null;

    /// <summary>The down projection's weight (<c>[r, in]</c> or <c>[r, in, kh, kw]</c>).</summary>
    public Parameter DownWeight => lora_down is Linear l ? l.weight! : ((Conv2d)lora_down).weight;

    /// <summary>The up projection's weight (<c>[out, r]</c> or <c>[out, r, 1, 1]</c>).</summary>
    public Parameter UpWeight => lora_up is Linear l ? l.weight! : ((Conv2d)lora_up).weight;

    internal LayerShape Shape { get; }

    /// <summary>Draws the dropout masks when set (a CPU generator whose state a training checkpoint can save), so that
    /// training with dropout resumes bit-identically; null uses libtorch's global generator.</summary>
    internal Generator? DropoutGenerator { get; set; }

    /// <summary>The adapter's own update <c>(Alpha / Rank) · up(down(dropout(x)))</c> (without <see cref="Scale"/>), in the
    /// adapter's dtype.</summary>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.dtype == DownWeight.dtype ? input : input.to_type(DownWeight.dtype);
        if (Dropout > 0 && training) x = ApplyDropout(x);
        var h = lora_up.call(Down(x));
        return h.mul(Kept(Alpha / Rank)).MoveToOuterDisposeScope();
    }

    private Tensor ApplyDropout(Tensor x)
    {
        if (DropoutGenerator is not { } generator) return functional.dropout(x, Dropout, training: true);
        var keep = rand(x.shape, dtype: ScalarType.Float32, generator: generator).ge(Kept(Dropout)).to(x.device);
        return x.mul(keep.to_type(x.dtype)).div(Kept(1 - Dropout));
    }

    /// <summary>The down projection. A k×k down conv has rank-many output channels, which libtorch's CPU kernel gets
    /// wrong for the input gradient when not a multiple of 16, so it takes the padded path the U-Net's own narrow convs take.</summary>
    private Tensor Down(Tensor x)
    {
        if (lora_down is Conv2d conv && Shape.Kind == LoraLayerKind.ConvKxK && Shape.Dilation == (1, 1)
            && Shape.Stride.Item1 == Shape.Stride.Item2 && Shape.Padding.Item1 == Shape.Padding.Item2)
            return NarrowChannelConvolution.Apply(conv, x, Shape.Stride.Item1, Shape.Padding.Item1);
        return lora_down.call(x);
    }

    /// <summary>Starts the adapter afresh from <paramref name="generator"/>: <c>lora_down</c> uniform in ±1/√fan_in (what
    /// PyTorch's default layer initialisation and PEFT's <c>lora_A</c> draw), <c>lora_up</c> zero. Unlike the constructor,
    /// which draws from libtorch's global generator, this is reproducible.</summary>
    internal void ResetParameters(Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        double bound = 1.0 / Math.Sqrt(DownWeight[0].numel());
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var values = rand(DownWeight.shape, dtype: ScalarType.Float32, generator: generator).mul(Kept(2 * bound)).sub(Kept(bound));
        DownWeight.copy_(values.to(DownWeight.dtype).to(DownWeight.device));
        UpWeight.zero_();
    }

    /// <summary>The weight update <c>Scale' · (Alpha / Rank) · up ⋅ down</c> in the base weight's shape, float32.</summary>
    public Tensor WeightDelta(double scale)
    {
        using var scope = NewDisposeScope();
        var up = UpWeight.detach().to_type(ScalarType.Float32).flatten(1).mul(Kept(Alpha / Rank));
        var down = DownWeight.detach().to_type(ScalarType.Float32).flatten(1);
        return up.mm(down).mul(Kept(scale)).reshape(Shape.WeightShape).MoveToOuterDisposeScope();
    }

    /// <summary>Puts the forward hook on <paramref name="layer"/> (the layer at <see cref="ModulePath"/>).</summary>
    /// <exception cref="ArgumentException">The layer's shape does not match the adapter.</exception>
    public void Install(Module<Tensor, Tensor> layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (IsInstalled) throw new InvalidOperationException($"LoRA '{KohyaName}' is already installed.");
        var shape = Describe(Component, ModulePath, layer);
        if (!shape.Matches(Shape))
            throw LoraErrors.Target(ModulePath, $"the adapter was made for {Shape} but the layer is {shape}.");
        if (layer is not (TorchSharp.Modules.Linear or TorchSharp.Modules.Conv2d)) throw LoraErrors.Target(ModulePath, $"cannot wrap a {layer.GetType().Name}.");
        var remover = layer.register_forward_hook((_, input, output) => AddUpdate(input, output));
        _binding.Layer = layer;
        _binding.Hook = remover.remove;
    }

    /// <summary>Takes the forward hook off the layer. A merged update stays in the layer's weight (as diffusers'
    /// <c>unload_lora_weights</c> after <c>fuse_lora</c>); call <see cref="Unmerge"/> first to take it out.</summary>
    public void Remove()
    {
        _binding.Hook?.Invoke();
        _binding.Hook = null;
        if (!IsMerged) _binding.Layer = null;
    }

    /// <summary>Adds <c>scale · (Alpha / Rank) · up ⋅ down</c> (float32, then the weight's dtype) to the wrapped layer's weight
    /// (default scale: <see cref="Scale"/>). The hook then adds nothing until <see cref="Unmerge"/>.</summary>
    public void Merge(double? scale = null)
    {
        var layer = _binding.Layer ?? throw new InvalidOperationException($"LoRA '{KohyaName}' is not installed on a layer.");
        if (IsMerged) throw new InvalidOperationException($"LoRA '{KohyaName}' is already merged.");
        double s = scale ?? Scale;
        if (!double.IsFinite(s)) throw new ArgumentOutOfRangeException(nameof(scale), s, "LoRA scale must be finite.");
        var weight = WeightOf(layer);
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var delta = WeightDelta(s);
            weight.copy_(weight.to_type(ScalarType.Float32).add(delta, One).to_type(weight.dtype));
        }
        _mergedScale = s;
    }

    /// <summary>Subtracts the merged update again (exact up to float32 rounding of the weight).</summary>
    public void Unmerge()
    {
        if (_mergedScale is not { } s) throw new InvalidOperationException($"LoRA '{KohyaName}' is not merged.");
        var layer = _binding.Layer!;
        var weight = WeightOf(layer);
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var delta = WeightDelta(s);
            weight.copy_(weight.to_type(ScalarType.Float32).sub(delta).to_type(weight.dtype));
        }
        _mergedScale = null;
        if (_binding.Hook is null) _binding.Layer = null;
    }

    private Tensor AddUpdate(Tensor input, Tensor output)
    {
        if (IsMerged || Scale == 0) return output;
        using var scope = NewDisposeScope();
        var update = call(input);
        if (Scale != 1) update = update.mul(Kept(Scale));
        return output.add(update.dtype == output.dtype ? update : update.to_type(output.dtype), One).MoveToOuterDisposeScope();
    }

    internal static Parameter WeightOf(Module<Tensor, Tensor> layer) => layer switch
    {
        Linear l => l.weight!,
        Conv2d c => c.weight,
        _ => throw LoraErrors.Target(null, $"cannot wrap a {layer.GetType().Name}."),
    };

    internal static LayerShape Describe(LoraComponent component, string modulePath, Module<Tensor, Tensor> layer)
    {
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        ArgumentNullException.ThrowIfNull(layer);
        switch (layer)
        {
            case Linear l:
            {
                var w = l.weight!;
                return new LayerShape(LoraLayerKind.Linear, w.shape[1], w.shape[0], 1, 1, (1, 1), (0, 0), (1, 1), w.device);
            }
            case Conv2d c:
            {
                if (c.groups != 1) throw LoraErrors.Target(modulePath, "a grouped convolution cannot carry a LoRA adapter.");
                if (c.padding is null || c.padding_mode != PaddingModes.Zeros)
                    throw LoraErrors.Target(modulePath, "only convolutions with explicit zero padding can carry a LoRA adapter.");
                var w = c.weight;
                long kh = w.shape[2], kw = w.shape[3];
                var kind = kh == 1 && kw == 1 ? LoraLayerKind.Conv1x1 : LoraLayerKind.ConvKxK;
                return new LayerShape(kind, w.shape[1], w.shape[0], kh, kw, (c.stride[0], c.stride[1]), (c.padding[0], c.padding[1]),
                    (c.dilation[0], c.dilation[1]), w.device);
            }
            default:
                throw LoraErrors.Target($"{LoraComponentNames.KohyaPrefix(component)}{modulePath}",
                    $"is a {layer.GetType().Name}; LoRA adapters wrap Linear and Conv2d layers only.");
        }
    }

    /// <summary>Geometry of a wrappable layer.</summary>
    internal sealed record LayerShape(LoraLayerKind Kind, long In, long Out, long KernelH, long KernelW,
        (long, long) Stride, (long, long) Padding, (long, long) Dilation, Device Device)
    {
        public long[] WeightShape => Kind == LoraLayerKind.Linear ? [Out, In] : [Out, In, KernelH, KernelW];

        public bool Matches(LayerShape other) => Kind == other.Kind && In == other.In && Out == other.Out && KernelH == other.KernelH
            && KernelW == other.KernelW && Stride == other.Stride && Padding == other.Padding && Dilation == other.Dilation;

        public override string ToString() => Kind == LoraLayerKind.Linear
            ? $"Linear({In} → {Out})"
            : $"Conv2d({In} → {Out}, {KernelH}x{KernelW}, stride {Stride}, padding {Padding})";
    }

    // Not a module field: the wrapped layer must not become a child of the adapter (its weights would be listed twice).
    private sealed class LayerBinding
    {
        public Module<Tensor, Tensor>? Layer;
        public Action? Hook;
    }
}
