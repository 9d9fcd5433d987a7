using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>
/// Tensors held in memory (a live module's state dict, or tensors built for an export) seen as an
/// <see cref="IStateDictSource"/>, so writers that read through the interface export a model without saving it first.
/// <see cref="Read"/> hands out new tensor handles (sharing storage unless converted): disposing them never frees the
/// module's own tensors.
/// </summary>
internal sealed class TensorStateDictSource : IStateDictSource
{
    private readonly string _description;
    private readonly IReadOnlyDictionary<string, torch.Tensor> _tensors;

    /// <param name="description">What the tensors are, for messages (e.g. "the fine-tuned U-Net").</param>
    /// <param name="tensors">The tensors by name; they stay owned by the caller.</param>
    public TensorStateDictSource(string description, IReadOnlyDictionary<string, torch.Tensor> tensors)
    {
        _description = description;
        _tensors = tensors;
    }

    public IEnumerable<string> Names => _tensors.Keys;

    public IReadOnlyList<string> FilePaths => [_description];

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public long[] ShapeOf(string name) => Get(name).shape;

    public torch.ScalarType ScalarTypeOf(string name) => Get(name).dtype;

    public string FileOf(string name) => _description;

    public torch.Tensor Read(string name, torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        var value = Get(name).detach();
        if (dtype is { } d && value.dtype != d)
        {
            var converted = value.to_type(d);
            value.Dispose();
            value = converted;
        }
        if (device is not null)
        {
            var moved = value.to(device);
            if (!ReferenceEquals(moved, value)) value.Dispose();
            value = moved;
        }
        return value;
    }

    private torch.Tensor Get(string name) =>
        _tensors.TryGetValue(name, out var tensor) ? tensor : throw new KeyNotFoundException($"No tensor named '{name}' in {_description}.");
}
