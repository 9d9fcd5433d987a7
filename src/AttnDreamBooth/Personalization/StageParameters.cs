using TorchSharp.Modules;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Which U-Net parameters a stage trains, by diffusers parameter name: none in stage 1 (only the [V] embedding row
/// is learned, on the text side), the cross-attention projections in stage 2
/// (<c>….attn2.to_q.weight</c>, <c>to_k</c>, <c>to_v</c>, <c>to_out.0.weight</c>/<c>bias</c> — the official script's
/// "name contains attn2" rule), every parameter in stage 3.
/// </summary>
internal static class StageParameters
{
    private static readonly string[] CrossAttentionProjections = ["to_q", "to_k", "to_v", "to_out"];

    /// <summary>Whether <paramref name="stage"/> trains the U-Net parameter named <paramref name="unetParameterName"/>.</summary>
    public static bool IsTrained(TrainingStage stage, string unetParameterName)
    {
        ArgumentNullException.ThrowIfNull(unetParameterName);
        return stage switch
        {
            TrainingStage.Embedding => false,
            TrainingStage.CrossAttention => IsCrossAttentionProjection(unetParameterName),
            TrainingStage.UNet => true,
            _ => throw new ArgumentOutOfRangeException(nameof(stage), stage, "Unknown training stage."),
        };
    }

    /// <summary>The U-Net parameters <paramref name="stage"/> trains, in the given order.</summary>
    public static IReadOnlyList<(string Name, Parameter Parameter)> Select(
        TrainingStage stage, IEnumerable<(string Name, Parameter Parameter)> unetParameters)
    {
        ArgumentNullException.ThrowIfNull(unetParameters);
        return unetParameters.Where(p => IsTrained(stage, p.Name)).ToArray();
    }

    /// <summary>
    /// Sets <c>requires_grad</c> on every parameter: true for the ones <paramref name="stage"/> trains, false for the
    /// rest (so frozen weights neither hold gradients nor cost backward work). Returns the trained ones.
    /// </summary>
    public static IReadOnlyList<(string Name, Parameter Parameter)> Freeze(
        TrainingStage stage, IEnumerable<(string Name, Parameter Parameter)> unetParameters)
    {
        ArgumentNullException.ThrowIfNull(unetParameters);
        var all = unetParameters.ToArray();
        var trained = new List<(string, Parameter)>();
        foreach (var (name, parameter) in all)
        {
            bool train = IsTrained(stage, name);
            parameter.requires_grad = train;
            if (!train) parameter.grad = null;
            else trained.Add((name, parameter));
        }
        return trained;
    }

    /// <summary>Freezes every U-Net parameter (a LoRA stage trains adapters outside the U-Net) and drops their gradients.</summary>
    public static void FreezeAll(IEnumerable<(string Name, Parameter Parameter)> unetParameters)
    {
        ArgumentNullException.ThrowIfNull(unetParameters);
        foreach (var (_, parameter) in unetParameters)
        {
            parameter.requires_grad = false;
            parameter.grad = null;
        }
    }

    private static bool IsCrossAttentionProjection(string name)
    {
        // "<…>.attn2.<projection>[.0].<weight|bias>": look at the segment right after "attn2".
        var parts = name.Split('.');
        for (int i = 0; i + 1 < parts.Length; i++)
        {
            if (parts[i] == "attn2" && CrossAttentionProjections.Contains(parts[i + 1])) return true;
        }
        return false;
    }
}
