using System.Text.Json;
using AttnDreamBooth.Models.Lora;

namespace AttnDreamBooth.Tests.Models.Lora;

/// <summary>The kohya key maps on the real SD 1.5 / 2.1 / 2.1-base parameter names (tests/fixtures/real-size).</summary>
public sealed class LoraRealSizeKeyMapTests
{
    public static TheoryData<string> Variants()
    {
        var data = new TheoryData<string>();
        foreach (string dir in Directory.EnumerateDirectories(FixtureRoots.RealSize).Order(StringComparer.Ordinal))
        {
            if (File.Exists(Path.Combine(dir, "unet", "state_dict_shapes.json"))) data.Add(Path.GetFileName(dir));
        }
        return data;
    }

    private static Dictionary<string, long[]> Shapes(string variant, string component)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FixtureRoots.RealSize, variant, component, "state_dict_shapes.json")));
        return doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(d => d.GetInt64()).ToArray());
    }

    /// <summary>Module paths of every linear / conv weight (2-D or 4-D <c>.weight</c>).</summary>
    private static string[] LayerPaths(Dictionary<string, long[]> shapes) =>
        shapes.Where(p => p.Key.EndsWith(".weight", StringComparison.Ordinal) && p.Value.Length is 2 or 4)
            .Select(p => p.Key[..^".weight".Length]).ToArray();

    [Theory]
    [MemberData(nameof(Variants))]
    public void EveryLayerHasAUniqueKohyaNameThatResolvesBack(string variant)
    {
        foreach (var (component, folder) in new[] { (LoraComponent.UNet, "unet"), (LoraComponent.TextEncoder, "text_encoder") })
        {
            var shapes = Shapes(variant, folder);
            var paths = LayerPaths(shapes);
            var map = new LoraKeyMap(component, paths);
            Assert.Empty(map.Ambiguous);
            Assert.Equal(paths.Length, map.Count);
            foreach (string path in paths)
            {
                Assert.True(map.TryResolve(LoraComponentNames.KohyaName(component, path), out var back));
                Assert.Equal(path, back);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void TargetGroupsAndWellKnownA1111NamesMatchTheRealModels(string variant)
    {
        var unet = Shapes(variant, "unet");
        var te = Shapes(variant, "text_encoder");
        var unetPaths = LayerPaths(unet);
        var tePaths = LayerPaths(te);
        // SD 1.x / 2.x: 16 transformer blocks (down 6, mid 1, up 9), each attn1 + attn2 with 4 projections, ff with 2, proj_in/out.
        Assert.Equal(64, unetPaths.Count(p => LoraTargets.Matches(p, LoraUNetModules.CrossAttention)));
        Assert.Equal(64, unetPaths.Count(p => LoraTargets.Matches(p, LoraUNetModules.SelfAttention)));
        Assert.Equal(32, unetPaths.Count(p => LoraTargets.Matches(p, LoraUNetModules.FeedForward)));
        Assert.Equal(32, unetPaths.Count(p => LoraTargets.Matches(p, LoraUNetModules.TransformerProjections)));
        // 22 resnets (down 8, mid 2, up 12): conv1 + conv2 each, plus the 1x1 shortcuts where channels change.
        int shortcuts = unetPaths.Count(p => p.EndsWith(".conv_shortcut", StringComparison.Ordinal));
        Assert.Equal(44 + shortcuts, unetPaths.Count(p => LoraTargets.Matches(p, LoraUNetModules.ResnetConvs)));
        Assert.DoesNotContain(unetPaths, p => LoraTargets.Matches(p, LoraUNetModules.All) && (p.Contains("time_embedding") || p is "conv_in" or "conv_out"));
        int layers = tePaths.Count(p => p.EndsWith(".mlp.fc1", StringComparison.Ordinal));
        Assert.Equal(6 * layers, tePaths.Count(p => LoraTargets.Matches(p, LoraTextEncoderModules.All)));

        // Names as A1111 / kohya LoRAs for these models spell them.
        var unetMap = new LoraKeyMap(LoraComponent.UNet, unetPaths);
        var teMap = new LoraKeyMap(LoraComponent.TextEncoder, tePaths);
        string[] unetNames =
        [
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0",
            "lora_unet_down_blocks_2_attentions_1_transformer_blocks_0_attn2_to_k",
            "lora_unet_mid_block_attentions_0_proj_in",
            "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_ff_net_0_proj",
            "lora_unet_up_blocks_1_resnets_2_conv_shortcut",
            "lora_unet_down_blocks_1_resnets_0_conv1",
        ];
        foreach (string n in unetNames) Assert.True(unetMap.TryResolve(n, out _), n);
        Assert.True(teMap.TryResolve($"lora_te_text_model_encoder_layers_{layers - 1}_self_attn_out_proj", out var last));
        Assert.Equal($"text_model.encoder.layers.{layers - 1}.self_attn.out_proj", last);
        Assert.True(teMap.TryResolve("lora_te_text_model_encoder_layers_0_mlp_fc2", out _));

        // proj_in is a 1x1 conv in SD 1.5 and linear in SD 2.x: the LoRA shapes follow.
        long[] projIn = unet["down_blocks.0.attentions.0.proj_in.weight"];
        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(FixtureRoots.RealSize, variant, "unet", "config.json")));
        bool linear = config.RootElement.TryGetProperty("use_linear_projection", out var l) && l.ValueKind == JsonValueKind.True;
        Assert.Equal(linear ? 2 : 4, projIn.Length);
    }
}
