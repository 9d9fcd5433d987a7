using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>
/// A read-only view of named tensors spread over one or more safetensors files (shards). Only headers are
/// read when opened; tensors are read on demand.
/// </summary>
internal sealed class StateDictSource : IStateDictSource, IDisposable
{
    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, SafetensorsFile> _owner = new(StringComparer.Ordinal);

    private StateDictSource() { }

    /// <summary>Opens the given files; a name present in two files is an error.</summary>
    public static StateDictSource Open(IEnumerable<string> files)
    {
        var source = new StateDictSource();
        try
        {
            foreach (string path in files)
            {
                var file = SafetensorsFile.Open(path);
                source._files.Add(file);
                foreach (string name in file.Names)
                {
                    if (!source._owner.TryAdd(name, file))
                        throw new InvalidWeightsException(path, name, $"the tensor also appears in '{source._owner[name].FilePath}'");
                }
            }
            return source;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Opens the weights of a component folder (see <see cref="WeightFiles.Resolve"/>).</summary>
    public static StateDictSource OpenComponent(string componentFolder, string? variant = null) =>
        Open(WeightFiles.Resolve(componentFolder, variant));

    /// <summary>The files behind this source.</summary>
    public IReadOnlyList<string> FilePaths => _files.Select(f => f.FilePath).ToArray();

    /// <summary>All tensor names.</summary>
    public IEnumerable<string> Names => _owner.Keys;

    /// <summary>Whether a tensor of that name exists.</summary>
    public bool Contains(string name) => _owner.ContainsKey(name);

    /// <summary>The header entry (dtype, shape) of a tensor.</summary>
    public SafetensorsEntry Entry(string name) => _owner.TryGetValue(name, out var f)
        ? f.Entries[name]
        : throw new KeyNotFoundException($"No tensor named '{name}' in {string.Join(", ", FilePaths.Select(p => $"'{p}'"))}.");

    /// <inheritdoc />
    public long[] ShapeOf(string name) => Entry(name).Shape;

    /// <inheritdoc />
    public torch.ScalarType ScalarTypeOf(string name) => Entry(name).ScalarType;

    /// <summary>The file that holds a tensor.</summary>
    public string FileOf(string name) => _owner[name].FilePath;

    /// <summary>Reads a tensor, optionally converting its dtype and placing it on a device.</summary>
    public torch.Tensor Read(string name, torch.ScalarType? dtype = null, torch.Device? device = null) =>
        _owner.TryGetValue(name, out var f)
            ? f.ReadTensor(name, dtype, device)
            : throw new KeyNotFoundException($"No tensor named '{name}' in {string.Join(", ", FilePaths.Select(p => $"'{p}'"))}.");

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        _owner.Clear();
    }
}
