using AttnDreamBooth.Models.Attention;
using AttnDreamBooth.Models.Blocks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

using Attention = AttnDreamBooth.Models.Attention.Attention;

/// <summary>One piece of the U-Net timed in isolation: a leaf module (conv, linear, norm) or a parameter-free op the
/// modules run between them (SiLU, the GEGLU gate, the attention kernel, residual adds and layout copies), on the input
/// it received during a real forward of the whole model.</summary>
/// <param name="Path">Module path (a functional op carries its host's path and a bracketed name).</param>
/// <param name="Module">The diffusers-level module it belongs to (a resnet, attn1, attn2, ff, a transformer's shell…).</param>
/// <param name="Kind">The op kind it is counted under.</param>
/// <param name="Forward">Builds fresh leaf inputs (requiring a gradient where the real input did) and runs the forward.</param>
internal sealed record ProfileUnit(string Path, string Module, string Kind, Func<Tensor> Forward);

/// <summary>Captures every leaf module's real input during one forward of the U-Net (no graph is kept), then describes
/// the pieces to time in isolation.</summary>
internal static class ProfileUnits
{
    /// <summary>Runs one forward (no grad) with pre-hooks on every Conv2d, Linear, GroupNorm and LayerNorm, keeping a
    /// copy of each input, and returns the units built on them.</summary>
    public static IReadOnlyList<ProfileUnit> Capture(RealSizeUNet net)
    {
        var modules = net.Model.named_modules().ToDictionary(m => m.name, m => m.module, StringComparer.Ordinal);
        var inputs = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var hooks = new List<Action>();
        foreach (var (name, module) in modules)
        {
            if (module is not (Conv2d or Linear or GroupNorm or LayerNorm)) continue;
            string path = name;
            var remover = ((nn.Module<Tensor, Tensor>)module).register_forward_pre_hook((_, x) =>
            {
                if (!inputs.ContainsKey(path)) inputs[path] = x.detach().clone().DetachFromDisposeScope();
                return x;
            });
            hooks.Add(remover.remove);
        }
        using (no_grad())
        using (NewDisposeScope())
        {
            net.Model.call(net.Latents, net.Timestep, net.Text);
        }
        foreach (var remove in hooks) remove();
        return Build(modules, inputs);
    }

    private static IReadOnlyList<ProfileUnit> Build(Dictionary<string, nn.Module> modules, Dictionary<string, Tensor> inputs)
    {
        var units = new List<ProfileUnit>();
        foreach (var (path, input) in inputs.OrderBy(i => i.Key, StringComparer.Ordinal))
        {
            var module = (nn.Module<Tensor, Tensor>)modules[path];
            bool grad = InputRequiresGrad(path);
            units.Add(new ProfileUnit(path, ModuleOf(path), KindOf(path, modules[path]), () => module.call(Leaf(input, grad))));
            if (module is GroupNorm norm && (path.EndsWith(".norm1", StringComparison.Ordinal) && path.Contains(".resnets.", StringComparison.Ordinal)
                || path.EndsWith(".norm2", StringComparison.Ordinal) && path.Contains(".resnets.", StringComparison.Ordinal) || path == "conv_norm_out"))
            {
                var normalized = Eval(() => norm.call(input));
                units.Add(new ProfileUnit(path + " [silu]", ModuleOf(path), "SiLU", () => nn.functional.silu(Leaf(normalized, true))));
                if (path == "conv_norm_out")
                {
                    // conv_out goes through the narrow-channel path (zero-padded filters) when its input needs a gradient.
                    var conv = (Conv2d)modules["conv_out"];
                    var activated = Eval(() => nn.functional.silu(normalized));
                    units.Add(new ProfileUnit("conv_out", "conv_out", "conv 3×3 (conv_out, 4 channels)", () => NarrowChannelConvolution.Apply(conv, Leaf(activated, true))));
                }
            }
            if (path.Contains(".resnets.", StringComparison.Ordinal) && path.EndsWith(".conv2", StringComparison.Ordinal))
            {
                // The block's residual arithmetic: + time embedding (broadcast), + shortcut.
                long c = input.shape[1];
                units.Add(new ProfileUnit(Parent(path) + " [adds]", ModuleOf(path), "residual adds, layout copies", () =>
                {
                    var h = Leaf(input, true);
                    var t = Leaf(input.mean([2L, 3L]), true);
                    var s = Leaf(input, true);
                    return s.add(h.add(t.view(1, c, 1, 1)));
                }));
            }
            if (path.StartsWith("up_blocks.", StringComparison.Ordinal) && path.Contains(".resnets.", StringComparison.Ordinal) && path.EndsWith(".norm1", StringComparison.Ordinal))
            {
                // The skip connection joined to the block's input (its cost depends on the total size only).
                var first = Eval(() => input.narrow(1, 0, input.shape[1] / 2).contiguous());
                var second = Eval(() => input.narrow(1, input.shape[1] / 2, input.shape[1] - input.shape[1] / 2).contiguous());
                units.Add(new ProfileUnit(Parent(path) + " [cat]", ModuleOf(path), "skip concatenation", () => cat([Leaf(first, true), Leaf(second, true)], 1)));
            }
            if (path.EndsWith(".upsamplers.0.conv", StringComparison.Ordinal))
            {
                var small = Eval(() => input.slice(2, 0, input.shape[2], 2).slice(3, 0, input.shape[3], 2).contiguous());
                units.Add(new ProfileUnit(Parent(path) + " [nearest]", ModuleOf(path), "upsample (nearest ×2)", () =>
                    nn.functional.interpolate(Leaf(small, true), scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest)));
            }
            if (path.EndsWith(".to_q", StringComparison.Ordinal))
            {
                var attn = (Attention)modules[Parent(path)];
                var source = inputs[Parent(path) + ".to_k"];
                var q = Eval(() => attn.ToQ.call(input));
                var k = Eval(() => attn.ToK.call(source));
                var v = Eval(() => attn.ToV.call(source));
                string kind = attn.IsCrossAttention ? "attention kernel (attn2, 77 keys)" : "attention kernel (attn1, self)";
                units.Add(new ProfileUnit(Parent(path) + " [sdpa]", ModuleOf(path), kind, () =>
                    attn.MergeHeads(AttentionMath.Fused(attn.SplitHeads(Leaf(q, true)), attn.SplitHeads(Leaf(k, true)), attn.SplitHeads(Leaf(v, true)), attn.UpcastAttention))));
            }
            if (path.EndsWith(".ff.net.0.proj", StringComparison.Ordinal))
            {
                var projected = Eval(() => module.call(input));
                units.Add(new ProfileUnit(path + " [gelu gate]", ModuleOf(path), "GELU gate (GEGLU)", () =>
                {
                    var halves = Leaf(projected, true).chunk(2, -1);
                    return halves[0].mul(nn.functional.gelu(halves[1]));
                }));
            }
            if (path.EndsWith(".transformer_blocks.0.norm1", StringComparison.Ordinal))
            {
                // Three residual adds per transformer block.
                units.Add(new ProfileUnit(Parent(path) + " [adds]", ModuleOf(path), "residual adds, layout copies", () =>
                {
                    var h = Leaf(input, true).add(Leaf(input, true));
                    h = Leaf(input, true).add(h);
                    return Leaf(input, true).add(h);
                }));
            }
            if (path.EndsWith(".norm", StringComparison.Ordinal) && path.Contains(".attentions.", StringComparison.Ordinal))
            {
                // Transformer2DModel's shell: feature map → tokens (a copy), tokens → feature map (a contiguous copy) + input.
                long b = input.shape[0], ch = input.shape[1], hh = input.shape[2], ww = input.shape[3];
                var tokens = Eval(() => input.permute(0, 2, 3, 1).reshape(b, hh * ww, ch));
                units.Add(new ProfileUnit(Parent(path) + " [layout]", ModuleOf(path), "residual adds, layout copies", () =>
                {
                    var into = Leaf(input, true).permute(0, 2, 3, 1).reshape(b, hh * ww, ch);
                    var back = Leaf(tokens, true).reshape(b, hh, ww, ch).permute(0, 3, 1, 2).contiguous().add(Leaf(input, true));
                    return back.add(into.sum());
                }));
            }
        }
        return units;
    }

    private static Tensor Eval(Func<Tensor> f)
    {
        using (no_grad()) return f().detach().DetachFromDisposeScope();
    }

    private static Tensor Leaf(Tensor captured, bool grad) => captured.detach().requires_grad_(grad);

    /// <summary>Inputs that do not depend on a parameter need no gradient: the latents (conv_in), the sinusoidal timestep
    /// features (time_embedding.linear_1) and the text states (attn2.to_k / to_v).</summary>
    private static bool InputRequiresGrad(string path) =>
        !(path == "conv_in" || path == "time_embedding.linear_1" || path.EndsWith(".attn2.to_k", StringComparison.Ordinal) || path.EndsWith(".attn2.to_v", StringComparison.Ordinal));

    private static string Parent(string path) => path[..path.LastIndexOf('.')];

    /// <summary>The diffusers-level module of a path: attn1 / attn2 / ff of a transformer block, a resnet, a transformer's
    /// shell (norms, projections, layout), a down/upsampler, or a top-level module.</summary>
    internal static string ModuleOf(string path)
    {
        string[] parts = path.Split('.');
        for (int i = 0; i < parts.Length; i++)
        {
            if (parts[i] is "attn1" or "attn2" or "ff") return string.Join('.', parts[..(i + 1)]);
        }
        for (int i = 0; i + 1 < parts.Length; i++)
        {
            if (parts[i] is "resnets" or "downsamplers" or "upsamplers") return string.Join('.', parts[..(i + 2)]);
            if (parts[i] == "attentions") return string.Join('.', parts[..(i + 2)]) + " (norms, proj_in/out, adds)";
        }
        return parts[0] is "down_blocks" or "up_blocks" ? string.Join('.', parts[..2]) : parts[0];
    }

    private static string KindOf(string path, nn.Module module) => module switch
    {
        Conv2d conv when conv.weight!.shape[2] == 1 => path.Contains("proj_", StringComparison.Ordinal) ? "conv 1×1 (proj_in/out)" : "conv 1×1 (shortcut)",
        Conv2d when path.Contains("downsamplers", StringComparison.Ordinal) => "conv 3×3 stride 2 (downsample)",
        Conv2d => "conv 3×3",
        Linear when path.Contains(".attn", StringComparison.Ordinal) => "linear: attention q/k/v/out",
        Linear when path.Contains(".ff.", StringComparison.Ordinal) => "linear: feed-forward",
        Linear when path.Contains("proj_", StringComparison.Ordinal) => "linear: proj_in/proj_out",
        Linear => "linear: time embedding",
        GroupNorm => "group norm",
        LayerNorm => "layer norm",
        _ => module.GetType().Name,
    };
}
