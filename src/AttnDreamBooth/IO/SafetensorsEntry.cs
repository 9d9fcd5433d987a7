using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>One tensor's header entry: its dtype, shape and byte range within the data section.</summary>
/// <param name="Name">The tensor's name (a state-dict key).</param>
/// <param name="DType">The safetensors dtype name, e.g. <c>F32</c>.</param>
/// <param name="ScalarType">The equivalent TorchSharp type.</param>
/// <param name="Shape">The dimensions; empty for a 0-dim tensor.</param>
/// <param name="Begin">Start offset in the data section, inclusive.</param>
/// <param name="End">End offset in the data section, exclusive.</param>
internal sealed record SafetensorsEntry(string Name, string DType, torch.ScalarType ScalarType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements (1 for a 0-dim tensor).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Size of the tensor's bytes.</summary>
    public long ByteLength => End - Begin;
}
