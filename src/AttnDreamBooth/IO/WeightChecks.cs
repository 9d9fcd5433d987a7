using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>Cheap value checks on loaded weights.</summary>
internal static class WeightChecks
{
    /// <summary>Whether every element of <paramref name="tensor"/> is finite (integer and boolean tensors always are).</summary>
    public static bool IsFinite(torch.Tensor tensor)
    {
        if (!tensor.is_floating_point() || tensor.NumberOfElements == 0) return true;
        using var finite = tensor.isfinite();
        using var all = finite.all();
        return all.item<bool>();
    }
}
