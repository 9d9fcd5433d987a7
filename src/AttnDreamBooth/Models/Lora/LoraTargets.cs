using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;

namespace AttnDreamBooth.Models.Lora;

/// <summary>Groups of U-Net layers that can carry LoRA adapters (combine with <c>|</c>).</summary>
[Flags]
public enum LoraUNetModules
{
    /// <summary>No U-Net layer.</summary>
    None = 0,

    /// <summary>Self-attention projections: <c>attn1.to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c>.</summary>
    SelfAttention = 1,

    /// <summary>Cross-attention projections: <c>attn2.to_q</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0</c> (AttnDreamBooth's stage 2).</summary>
    CrossAttention = 2,

    /// <summary>Transformer feed-forward: <c>ff.net.0.proj</c> (GEGLU) and <c>ff.net.2</c>.</summary>
    FeedForward = 4,

    /// <summary>Transformer <c>proj_in</c> / <c>proj_out</c> (1×1 convs in SD 1.x, linear in SD 2.x).</summary>
    TransformerProjections = 8,

    /// <summary>ResNet <c>conv1</c>, <c>conv2</c> (3×3, "LoCon") and <c>conv_shortcut</c> (1×1).</summary>
    ResnetConvs = 16,

    /// <summary>Both attentions.</summary>
    Attention = SelfAttention | CrossAttention,

    /// <summary>Everything inside the transformer blocks plus proj_in/proj_out (kohya's default LoRA targets).</summary>
    Transformer = Attention | FeedForward | TransformerProjections,

    /// <summary><see cref="Transformer"/> plus the ResNet convs (kohya LoCon).</summary>
    All = Transformer | ResnetConvs,
}

/// <summary>Groups of text-encoder layers that can carry LoRA adapters.</summary>
[Flags]
public enum LoraTextEncoderModules
{
    /// <summary>No text-encoder layer.</summary>
    None = 0,

    /// <summary><c>self_attn.q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>out_proj</c> of every layer.</summary>
    SelfAttention = 1,

    /// <summary><c>mlp.fc1</c> and <c>mlp.fc2</c> of every layer.</summary>
    Mlp = 2,

    /// <summary>Both (kohya's default).</summary>
    All = SelfAttention | Mlp,
}

/// <summary>Finds the diffusers module paths of the layers a LoRA should wrap.</summary>
internal static partial class LoraTargets
{
    /// <summary>Module paths of the U-Net's Linear/Conv2d layers in <paramref name="modules"/>, in module order.</summary>
    public static IReadOnlyList<string> Select(torch.nn.Module unet, LoraUNetModules modules)
    {
        ArgumentNullException.ThrowIfNull(unet);
        return Layers(unet).Select(l => l.Path).Where(p => Matches(p, modules)).ToArray();
    }

    /// <summary>Module paths of the text encoder's Linear layers in <paramref name="modules"/>, in module order.</summary>
    public static IReadOnlyList<string> Select(torch.nn.Module textEncoder, LoraTextEncoderModules modules)
    {
        ArgumentNullException.ThrowIfNull(textEncoder);
        return Layers(textEncoder).Select(l => l.Path).Where(p => Matches(p, modules)).ToArray();
    }

    /// <summary>Whether a U-Net module path belongs to <paramref name="modules"/>.</summary>
    public static bool Matches(string path, LoraUNetModules modules) =>
        (modules.HasFlag(LoraUNetModules.SelfAttention) && SelfAttentionPattern().IsMatch(path))
        || (modules.HasFlag(LoraUNetModules.CrossAttention) && CrossAttentionPattern().IsMatch(path))
        || (modules.HasFlag(LoraUNetModules.FeedForward) && FeedForwardPattern().IsMatch(path))
        || (modules.HasFlag(LoraUNetModules.TransformerProjections) && ProjectionPattern().IsMatch(path))
        || (modules.HasFlag(LoraUNetModules.ResnetConvs) && ResnetPattern().IsMatch(path));

    /// <summary>Whether a text-encoder module path belongs to <paramref name="modules"/>.</summary>
    public static bool Matches(string path, LoraTextEncoderModules modules) =>
        (modules.HasFlag(LoraTextEncoderModules.SelfAttention) && TextAttentionPattern().IsMatch(path))
        || (modules.HasFlag(LoraTextEncoderModules.Mlp) && TextMlpPattern().IsMatch(path));

    /// <summary>The number of adapter parameters rank-<paramref name="rank"/> adapters on <paramref name="modules"/> of a U-Net
    /// hold: per layer r·(in·kh·kw + out), r capped at min(in·kh·kw, out) as <see cref="LoraNetwork.Create(torch.nn.Module?, LoraUNetModules, torch.nn.Module?, LoraTextEncoderModules, LoraOptions)"/> caps it.</summary>
    public static long ParameterCount(torch.nn.Module unet, LoraUNetModules modules, int rank)
    {
        ArgumentNullException.ThrowIfNull(unet);
        long total = 0;
        foreach (var (path, layer) in Layers(unet))
        {
            if (!Matches(path, modules)) continue;
            var shape = LoraAdapter.Describe(LoraComponent.UNet, path, layer);
            long fanIn = shape.In * shape.KernelH * shape.KernelW;
            total += Math.Min(rank, Math.Min(fanIn, shape.Out)) * (fanIn + shape.Out);
        }
        return total;
    }

    /// <summary>Every Linear and Conv2d layer of <paramref name="model"/> with its module path.</summary>
    public static IEnumerable<(string Path, torch.nn.Module<torch.Tensor, torch.Tensor> Layer)> Layers(torch.nn.Module model)
    {
        foreach (var (name, module) in model.named_modules())
        {
            if (module is Linear or Conv2d) yield return (name, (torch.nn.Module<torch.Tensor, torch.Tensor>)module);
        }
    }

    [GeneratedRegex(@"(^|\.)attn1\.(to_q|to_k|to_v|to_out\.0)$")]
    private static partial Regex SelfAttentionPattern();

    [GeneratedRegex(@"(^|\.)attn2\.(to_q|to_k|to_v|to_out\.0)$")]
    private static partial Regex CrossAttentionPattern();

    [GeneratedRegex(@"(^|\.)ff\.net\.(0\.proj|2)$")]
    private static partial Regex FeedForwardPattern();

    [GeneratedRegex(@"(^|\.)attentions\.\d+\.(proj_in|proj_out)$")]
    private static partial Regex ProjectionPattern();

    [GeneratedRegex(@"(^|\.)resnets\.\d+\.(conv1|conv2|conv_shortcut)$")]
    private static partial Regex ResnetPattern();

    [GeneratedRegex(@"(^|\.)self_attn\.(q_proj|k_proj|v_proj|out_proj)$")]
    private static partial Regex TextAttentionPattern();

    [GeneratedRegex(@"(^|\.)mlp\.(fc1|fc2)$")]
    private static partial Regex TextMlpPattern();
}
