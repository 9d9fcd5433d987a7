using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>The element types of the safetensors format and their TorchSharp equivalents.</summary>
internal static class SafetensorsDType
{
    private static readonly Dictionary<string, (torch.ScalarType Type, int Size)> ByName = new(StringComparer.Ordinal)
    {
        ["F64"] = (torch.ScalarType.Float64, 8),
        ["F32"] = (torch.ScalarType.Float32, 4),
        ["F16"] = (torch.ScalarType.Float16, 2),
        ["BF16"] = (torch.ScalarType.BFloat16, 2),
        ["I64"] = (torch.ScalarType.Int64, 8),
        ["I32"] = (torch.ScalarType.Int32, 4),
        ["I16"] = (torch.ScalarType.Int16, 2),
        ["I8"] = (torch.ScalarType.Int8, 1),
        ["U8"] = (torch.ScalarType.Byte, 1),
        ["BOOL"] = (torch.ScalarType.Bool, 1),
    };

    /// <summary>The dtype names this library reads and writes.</summary>
    public static IReadOnlyCollection<string> Names => ByName.Keys;

    /// <summary>Looks up a safetensors dtype name; false when it is not supported.</summary>
    public static bool TryParse(string name, out torch.ScalarType type, out int elementSize)
    {
        if (ByName.TryGetValue(name, out var entry))
        {
            (type, elementSize) = entry;
            return true;
        }
        type = default;
        elementSize = 0;
        return false;
    }

    /// <summary>The safetensors name of a TorchSharp scalar type.</summary>
    /// <exception cref="ArgumentException">The type has no safetensors equivalent.</exception>
    public static string NameOf(torch.ScalarType type)
    {
        foreach (var (name, entry) in ByName)
        {
            if (entry.Type == type) return name;
        }
        throw new ArgumentException($"Scalar type {type} cannot be stored in a safetensors file.", nameof(type));
    }

    /// <summary>Bytes per element of a TorchSharp scalar type that safetensors can hold.</summary>
    public static int ElementSize(torch.ScalarType type) => ByName[NameOf(type)].Size;
}
