using AttnDreamBooth.Models.Attention;
using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Models.UNet;

using Attention = AttnDreamBooth.Models.Attention.Attention;

// Layer naming: each attention layer learns its module path and its spatial scale once the module tree is built.
public sealed partial class UNet2DConditionModel
{
    private Attention[] NameAttentionLayers()
    {
        var layers = new List<Attention>();
        var downFactor = new int[down_blocks.Count];
        int f = 1;
        for (int i = 0; i < down_blocks.Count; i++)
        {
            downFactor[i] = f;
            if (down_blocks[i].HasDownsampler) f *= 2;
        }
        int midFactor = f;
        var upFactor = new int[up_blocks.Count];
        for (int i = 0; i < up_blocks.Count; i++)
        {
            upFactor[i] = f;
            if (up_blocks[i].HasUpsampler) f = Math.Max(1, f / 2);
        }
        foreach (var (name, module) in named_modules())
        {
            if (module is not Attention attention) continue;
            attention.Path = name;
            var parts = name.Split('.');
            attention.DownscaleFactor = parts[0] switch
            {
                "down_blocks" => downFactor[int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture)],
                "up_blocks" => upFactor[int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture)],
                _ => midFactor,
            };
            layers.Add(attention);
        }
        return layers.ToArray();
    }
}
