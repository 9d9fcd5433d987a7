using TorchSharp;
using static TorchSharp.torch;

namespace AttnDreamBooth.Training;

/// <summary>The <see cref="DynamicQuantizationMap"/> values and decision boundaries as float32 tensors, created once per
/// device and map and owned (disposed) by this object.</summary>
internal sealed class QuantizationMaps : IDisposable
{
    private readonly Dictionary<(bool Signed, string Device), (Tensor Values, Tensor Boundaries)> _maps = [];

    /// <summary>The 256 map values on <paramref name="device"/>.</summary>
    public Tensor Values(bool signed, Device device) => Get(signed, device).Values;

    /// <summary>The 255 boundaries between neighbouring values on <paramref name="device"/>.</summary>
    public Tensor Boundaries(bool signed, Device device) => Get(signed, device).Boundaries;

    private (Tensor Values, Tensor Boundaries) Get(bool signed, Device device)
    {
        var key = (signed, device.ToString());
        if (!_maps.TryGetValue(key, out var entry))
        {
            var map = DynamicQuantizationMap.For(signed);
            entry = (tensor(map.ToArray(), dtype: ScalarType.Float32, device: device).DetachFromDisposeScope(),
                     tensor(DynamicQuantizationMap.Boundaries(map), dtype: ScalarType.Float32, device: device).DetachFromDisposeScope());
            _maps[key] = entry;
        }
        return entry;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var (values, boundaries) in _maps.Values)
        {
            values.Dispose();
            boundaries.Dispose();
        }
        _maps.Clear();
    }
}
