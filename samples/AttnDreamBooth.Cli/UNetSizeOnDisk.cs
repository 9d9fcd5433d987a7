using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;

namespace AttnDreamBooth.Cli;

/// <summary>
/// A model's U-Net parameter count read from its safetensors headers alone, before anything is loaded, so the
/// <c>train</c> command can set up the native heap for a real-size model before loading it.
/// </summary>
internal static class UNetSizeOnDisk
{
    /// <summary>The U-Net's parameter count: the elements of <c>unet/</c>'s weight files of a diffusers folder, or of the
    /// <c>model.diffusion_model.</c> tensors of a single <c>.safetensors</c> checkpoint. Null when the headers cannot tell
    /// (no such files, pickle weights, a damaged header): loading reports those properly.</summary>
    public static long? Parameters(string model)
    {
        try
        {
            if (File.Exists(model))
                return string.Equals(Path.GetExtension(model), ".safetensors", StringComparison.OrdinalIgnoreCase)
                    ? Count([model], name => name.StartsWith(SingleFileComponents.OriginalPrefix(SingleFileComponents.UNet, StableDiffusionFamily.Sd1), StringComparison.Ordinal))
                    : null;
            return Directory.Exists(model) ? Count(DiffusersFolder.Open(model).WeightPaths("unet"), _ => true) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ModelConfigException or InvalidWeightsException or InvalidDataException)
        {
            return null;
        }
    }

    private static long Count(IEnumerable<string> files, Func<string, bool> include)
    {
        long total = 0;
        foreach (string file in files)
        {
            using var weights = SafetensorsFile.Open(file);
            total += weights.Entries.Values.Where(e => include(e.Name)).Sum(e => e.ElementCount);
        }
        return total;
    }
}
