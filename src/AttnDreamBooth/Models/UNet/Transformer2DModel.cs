using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Blocks;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.UNet;

/// <summary>
/// diffusers' <c>Transformer2DModel</c> on continuous inputs: GroupNorm (eps 1e-6) → <c>proj_in</c> → transformer blocks
/// over the H·W tokens (token = y·W + x) → <c>proj_out</c> → plus the input. With <c>use_linear_projection</c> the
/// projections are Linear layers applied to the flattened tokens, otherwise 1x1 convs applied to the feature map.
/// </summary>
internal sealed class Transformer2DModel : Module<Tensor, Tensor, Tensor>
{
    private const double GroupNormEps = 1e-6;
    private readonly GroupNorm norm;
    private readonly Module<Tensor, Tensor> proj_in;
    private readonly ModuleList<BasicTransformerBlock> transformer_blocks;
    private readonly Module<Tensor, Tensor> proj_out;
    private readonly bool _linearProjection;

    /// <summary>Creates the transformer.</summary>
    public Transformer2DModel(int heads, int headDim, int inChannels, int layers, int crossAttentionDim, int groups,
        bool useLinearProjection, bool upcastAttention, double dropout = 0.0, Device? device = null) : base(nameof(Transformer2DModel))
    {
        int inner = heads * headDim;
        _linearProjection = useLinearProjection;
        norm = GroupNormalization.Create(groups, inChannels, GroupNormEps, device);
        proj_in = useLinearProjection ? Linear(inChannels, inner, device: device) : Conv2d(inChannels, inner, 1, device: device);
        transformer_blocks = new ModuleList<BasicTransformerBlock>(Enumerable.Range(0, layers)
            .Select(_ => new BasicTransformerBlock(inner, heads, headDim, crossAttentionDim, upcastAttention, dropout, device)).ToArray());
        proj_out = useLinearProjection ? Linear(inner, inChannels, device: device) : Conv2d(inner, inChannels, 1, device: device);
        if (!useLinearProjection) Nnpack.TurnOff();
        RegisterComponents();
    }

    /// <summary>Applies the transformer to <paramref name="hiddenStates"/> <c>[B, C, H, W]</c> with text states
    /// <paramref name="encoderHiddenStates"/> <c>[B, 77, cross_attention_dim]</c>.</summary>
    public override Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates)
    {
        using var scope = NewDisposeScope();
        long b = hiddenStates.shape[0], height = hiddenStates.shape[2], width = hiddenStates.shape[3];
        var context = new AttentionContext(checked((int)height), checked((int)width));
        var h = norm.call(hiddenStates);
        Tensor tokens;
        if (_linearProjection)
        {
            tokens = proj_in.call(h.permute(0, 2, 3, 1).reshape(b, height * width, h.shape[1]));
        }
        else
        {
            h = proj_in.call(h);
            tokens = h.permute(0, 2, 3, 1).reshape(b, height * width, h.shape[1]);
        }
        foreach (var block in transformer_blocks) tokens = block.call(tokens, encoderHiddenStates, context);
        Tensor output;
        if (_linearProjection)
        {
            tokens = proj_out.call(tokens);
            output = tokens.reshape(b, height, width, tokens.shape[2]).permute(0, 3, 1, 2);
            if (!ExecutionSwitches.TransformerOutputAsView) output = output.contiguous();
        }
        else
        {
            var map = tokens.reshape(b, height, width, tokens.shape[2]).permute(0, 3, 1, 2).contiguous();
            output = proj_out.call(map);
        }
        // In place only into a tensor this method made: proj_out's output or the contiguous copy, never the view.
        bool inPlace = ExecutionSwitches.InPlaceTransformerAdds && (!_linearProjection || !ExecutionSwitches.TransformerOutputAsView);
        return (inPlace ? output.add_(hiddenStates, One) : output.add(hiddenStates, One)).MoveToOuterDisposeScope();
    }
}
