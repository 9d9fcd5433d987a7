namespace AttnDreamBooth.IO.SingleFile;

/// <summary>Generates the per-component key maps from the layouts (the loops of the LDM layout, written once for any shape).</summary>
internal static class SingleFileKeyMaps
{
    private static readonly (string Original, string Diffusers)[] UNetResnetParts =
    [
        ("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("emb_layers.1.", "time_emb_proj."),
        ("out_layers.0.", "norm2."), ("out_layers.3.", "conv2."),
    ];

    private static readonly string[] VaeResnetParts = ["norm1.", "conv1.", "norm2.", "conv2."];

    public static ComponentKeyMap UNet(UNetSingleFileLayout layout)
    {
        var map = new ComponentKeyMap(SingleFileComponents.UNet)
            .Parameters("time_embed.0.", "time_embedding.linear_1.")
            .Parameters("time_embed.2.", "time_embedding.linear_2.")
            .Parameters("input_blocks.0.0.", "conv_in.")
            .Parameters("out.0.", "conv_norm_out.")
            .Parameters("out.2.", "conv_out.");
        int n = layout.LayersPerBlock;
        int levels = layout.Levels;
        for (int i = 0; i < levels; i++)
        {
            for (int j = 0; j < n; j++)
            {
                int index = (n + 1) * i + j + 1;
                UNetResnet(map, $"input_blocks.{index}.0.", $"down_blocks.{i}.resnets.{j}.");
                if (layout.DownHasAttention[i]) map.Subtree($"input_blocks.{index}.1.", $"down_blocks.{i}.attentions.{j}.");
            }
            if (i < levels - 1) map.Parameters($"input_blocks.{(n + 1) * (i + 1)}.0.op.", $"down_blocks.{i}.downsamplers.0.conv.");
        }
        UNetResnet(map, "middle_block.0.", "mid_block.resnets.0.");
        map.Subtree("middle_block.1.", "mid_block.attentions.0.");
        UNetResnet(map, "middle_block.2.", "mid_block.resnets.1.");
        for (int u = 0; u < levels; u++)
        {
            for (int j = 0; j <= n; j++)
            {
                int index = (n + 1) * u + j;
                UNetResnet(map, $"output_blocks.{index}.0.", $"up_blocks.{u}.resnets.{j}.");
                if (layout.UpHasAttention[u]) map.Subtree($"output_blocks.{index}.1.", $"up_blocks.{u}.attentions.{j}.");
            }
            // The upsampler shares the level's last entry, after the attention when there is one.
            if (u < levels - 1)
                map.Parameters($"output_blocks.{(n + 1) * u + n}.{(layout.UpHasAttention[u] ? 2 : 1)}.conv.", $"up_blocks.{u}.upsamplers.0.conv.");
        }
        return map;
    }

    private static void UNetResnet(ComponentKeyMap map, string original, string diffusers)
    {
        foreach (var (o, d) in UNetResnetParts) map.Parameters(original + o, diffusers + d, required: false);
        map.Parameters(original + "skip_connection.", diffusers + "conv_shortcut.", required: false);
        map.RequireModule(original);
    }

    public static ComponentKeyMap Vae(VaeSingleFileLayout layout)
    {
        var map = new ComponentKeyMap(SingleFileComponents.Vae)
            .Parameters("quant_conv.", "quant_conv.")
            .Parameters("post_quant_conv.", "post_quant_conv.");
        int n = layout.LayersPerBlock;
        int levels = layout.Levels;
        foreach (string side in new[] { "encoder.", "decoder." })
        {
            map.Parameters(side + "conv_in.", side + "conv_in.")
                .Parameters(side + "conv_out.", side + "conv_out.")
                .Parameters(side + "norm_out.", side + "conv_norm_out.");
            VaeResnet(map, side + "mid.block_1.", side + "mid_block.resnets.0.");
            VaeResnet(map, side + "mid.block_2.", side + "mid_block.resnets.1.");
            if (layout.MidHasAttention)
            {
                string o = side + "mid.attn_1.";
                string d = side + "mid_block.attentions.0.";
                map.Parameters(o + "norm.", d + "group_norm.")
                    .ConvToLinear(o + "q.", d + "to_q.")
                    .ConvToLinear(o + "k.", d + "to_k.")
                    .ConvToLinear(o + "v.", d + "to_v.")
                    .ConvToLinear(o + "proj_out.", d + "to_out.0.");
            }
        }
        for (int i = 0; i < levels; i++)
        {
            for (int j = 0; j < n; j++) VaeResnet(map, $"encoder.down.{i}.block.{j}.", $"encoder.down_blocks.{i}.resnets.{j}.");
            if (i < levels - 1) map.Parameters($"encoder.down.{i}.downsample.conv.", $"encoder.down_blocks.{i}.downsamplers.0.conv.");
        }
        for (int u = 0; u < levels; u++)
        {
            // The original numbers decoder levels by resolution, diffusers by execution order.
            int level = levels - 1 - u;
            for (int j = 0; j <= n; j++) VaeResnet(map, $"decoder.up.{level}.block.{j}.", $"decoder.up_blocks.{u}.resnets.{j}.");
            if (u < levels - 1) map.Parameters($"decoder.up.{level}.upsample.conv.", $"decoder.up_blocks.{u}.upsamplers.0.conv.");
        }
        return map;
    }

    private static void VaeResnet(ComponentKeyMap map, string original, string diffusers)
    {
        foreach (string part in VaeResnetParts) map.Parameters(original + part, diffusers + part, required: false);
        map.Parameters(original + "nin_shortcut.", diffusers + "conv_shortcut.", required: false);
        map.RequireModule(original);
    }

    /// <summary>SD 1.x: the original wraps a transformers CLIPTextModel, so names are unchanged below the prefix.</summary>
    public static ComponentKeyMap ClipText(TextEncoderSingleFileLayout layout)
    {
        var map = new ComponentKeyMap(SingleFileComponents.TextEncoder)
            .Parameters("text_model.embeddings.token_embedding.", "text_model.embeddings.token_embedding.")
            .Parameters("text_model.embeddings.position_embedding.", "text_model.embeddings.position_embedding.")
            .Parameters("text_model.final_layer_norm.", "text_model.final_layer_norm.");
        for (int i = 0; i < layout.Layers; i++) map.Subtree($"text_model.encoder.layers.{i}.", $"text_model.encoder.layers.{i}.");
        return map;
    }

    /// <summary>SD 2.x: OpenCLIP's text tower, with fused q/k/v and a bare positional embedding.</summary>
    public static ComponentKeyMap OpenClipText(TextEncoderSingleFileLayout layout)
    {
        var map = new ComponentKeyMap(SingleFileComponents.TextEncoder)
            .Parameters("token_embedding.", "text_model.embeddings.token_embedding.")
            .Exact("positional_embedding", ["text_model.embeddings.position_embedding.weight"], SingleFileOp.Copy)
            .Parameters("ln_final.", "text_model.final_layer_norm.");
        for (int i = 0; i < layout.Layers; i++)
        {
            string o = $"transformer.resblocks.{i}.";
            string d = $"text_model.encoder.layers.{i}.";
            map.Parameters(o + "ln_1.", d + "layer_norm1.")
                .Parameters(o + "ln_2.", d + "layer_norm2.")
                .Parameters(o + "attn.out_proj.", d + "self_attn.out_proj.")
                .Parameters(o + "mlp.c_fc.", d + "mlp.fc1.")
                .Parameters(o + "mlp.c_proj.", d + "mlp.fc2.");
            foreach (string leaf in new[] { "weight", "bias" })
            {
                map.Exact($"{o}attn.in_proj_{leaf}",
                    [$"{d}self_attn.q_proj.{leaf}", $"{d}self_attn.k_proj.{leaf}", $"{d}self_attn.v_proj.{leaf}"], SingleFileOp.SplitDim0);
            }
        }
        return map;
    }
}
