using TorchSharp;

namespace AttnDreamBooth.IO.SingleFile;

/// <summary>
/// One component of a single-file checkpoint seen under its diffusers names and shapes: load it into a module with
/// <see cref="StateDictLoader.Load"/>, or materialise it with <see cref="ReadAll"/>. Values are exactly the file's (a
/// reshape or a row slice at most). Valid while its <see cref="SingleFileCheckpoint"/> is open.
/// </summary>
internal sealed class SingleFileComponentSource : IStateDictSource
{
    internal sealed record Entry(string StoredKey, SingleFileOp Op, int Part, int Parts, long[] Shape, torch.ScalarType ScalarType);

    private readonly SafetensorsFile _file;
    private readonly Dictionary<string, Entry> _entries;

    internal SingleFileComponentSource(string component, SafetensorsFile file, Dictionary<string, Entry> entries)
    {
        Component = component;
        _file = file;
        _entries = entries;
    }

    /// <summary>The diffusers component name.</summary>
    public string Component { get; }

    /// <inheritdoc />
    public IEnumerable<string> Names => _entries.Keys;

    /// <inheritdoc />
    public IReadOnlyList<string> FilePaths => [_file.FilePath];

    /// <summary>Number of diffusers tensors.</summary>
    public int Count => _entries.Count;

    /// <inheritdoc />
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <inheritdoc />
    public long[] ShapeOf(string name) => Get(name).Shape;

    /// <inheritdoc />
    public torch.ScalarType ScalarTypeOf(string name) => Get(name).ScalarType;

    /// <inheritdoc />
    public string FileOf(string name) => $"{_file.FilePath} ({Get(name).StoredKey})";

    /// <summary>The stored key a diffusers tensor comes from.</summary>
    public string StoredKeyOf(string name) => Get(name).StoredKey;

    /// <inheritdoc />
    public torch.Tensor Read(string name, torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        var entry = Get(name);
        switch (entry.Op)
        {
            case SingleFileOp.Copy:
                return _file.ReadTensor(entry.StoredKey, dtype, device);
            case SingleFileOp.Reshape:
            {
                using var stored = _file.ReadTensor(entry.StoredKey, dtype, device);
                return stored.reshape(entry.Shape);
            }
            case SingleFileOp.SplitDim0:
            {
                using var fused = _file.ReadTensor(entry.StoredKey);
                long rows = entry.Shape[0];
                using var slice = fused.narrow(0, entry.Part * rows, rows);
                var piece = slice.clone();
                if (dtype is { } t && t != piece.dtype)
                {
                    var converted = piece.to_type(t);
                    piece.Dispose();
                    piece = converted;
                }
                if (device is not null && device.type != DeviceType.CPU)
                {
                    var moved = piece.to(device);
                    piece.Dispose();
                    piece = moved;
                }
                return piece;
            }
            default:
                throw new InvalidOperationException($"Unknown op {entry.Op}.");
        }
    }

    /// <summary>Reads every tensor into a dictionary keyed by diffusers name (the caller disposes the tensors).</summary>
    public Dictionary<string, torch.Tensor> ReadAll(torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (string name in _entries.Keys.Order(StringComparer.Ordinal)) result[name] = Read(name, dtype, device);
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>Writes this component as a diffusers weight file (e.g. <c>unet/diffusion_pytorch_model.safetensors</c>), atomically.</summary>
    public void WriteSafetensors(string path, torch.ScalarType? dtype = null)
    {
        var tensors = ReadAll(dtype);
        try
        {
            SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    private Entry Get(string name) => _entries.TryGetValue(name, out var e)
        ? e
        : throw new KeyNotFoundException($"The {Component} of '{_file.FilePath}' has no tensor named '{name}'.");
}
