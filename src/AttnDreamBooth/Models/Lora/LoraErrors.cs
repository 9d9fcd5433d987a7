using AttnDreamBooth.IO;

namespace AttnDreamBooth.Models.Lora;

/// <summary>The two ways LoRA input goes wrong: a file whose keys or tensors cannot be used (an
/// <see cref="InvalidWeightsException"/>, like any other weights file) and a layer named by the caller that cannot carry
/// an adapter (an <see cref="ArgumentException"/>).</summary>
internal static class LoraErrors
{
    /// <summary>The LoRA file <paramref name="filePath"/> (at <paramref name="key"/>, when one key is at fault) cannot be used.</summary>
    public static InvalidWeightsException File(string filePath, string? key, string problem) =>
        InvalidWeightsException.Lora(filePath, key, problem);

    /// <summary>The layer <paramref name="modulePath"/> (or, when null, the layer given) cannot carry an adapter.</summary>
    public static ArgumentException Target(string? modulePath, string problem) =>
        new(modulePath is null ? problem : $"'{modulePath}': {problem}");
}
