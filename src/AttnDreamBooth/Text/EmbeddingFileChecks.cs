using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Text;

/// <summary>The checks <see cref="LearnedEmbeddings"/> applies to an untrusted embedding file.</summary>
internal static class EmbeddingFileChecks
{
    /// <summary>From the header alone: every embedding tensor is floating point, and the rows sum to at most <paramref name="maxRows"/>.</summary>
    public static void CheckHeader(string file, SafetensorsFile safetensors, IEnumerable<string> names, int maxRows)
    {
        long rows = 0;
        foreach (string name in names)
        {
            var entry = safetensors.Entries[name];
            if (entry.ScalarType is not (torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Float32 or torch.ScalarType.Float64))
                throw InvalidWeightsException.Embeddings(file, $"'{name}' is stored as {entry.DType}; an embedding must be a floating-point tensor (F16, BF16, F32 or F64)");
            rows += entry.Shape.Length switch { 0 => 0, 1 => 1, _ => entry.Shape[0] };
            if (rows > maxRows)
                throw InvalidWeightsException.Embeddings(file, $"the file declares at least {rows:N0} embedding rows (counting up to '{name}'), which {ResourceLimits.Exceeds(nameof(ResourceLimits.MaxEmbeddingRows), maxRows)}");
        }
    }

    /// <summary>Every value of every tensor is finite; otherwise <see cref="InvalidWeightsException"/> lists the tensors that are not.</summary>
    public static void CheckFinite(string file, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors)
    {
        var bad = new List<string>();
        foreach (var (name, tensor) in tensors)
        {
            if (!WeightChecks.IsFinite(tensor)) bad.Add(name);
        }
        if (bad.Count > 0) throw InvalidWeightsException.NonFinite($"'{file}'", bad);
    }
}
