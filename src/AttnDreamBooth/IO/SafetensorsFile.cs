using System.IO.MemoryMappedFiles;
using System.Text.Json;
using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>
/// A safetensors file opened for reading. The header is parsed and fully validated on open; tensor bytes are
/// read on demand from a memory map straight into native tensor storage, so no managed copy of the weights
/// is ever made.
/// </summary>
/// <remarks>Not thread-safe for concurrent reads of the same instance; open one per thread.</remarks>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Largest header accepted: real headers are a few hundred kilobytes.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly Dictionary<string, SafetensorsEntry> _entries;
    private bool _disposed;

    private SafetensorsFile(string path, long dataStart, long dataLength, Dictionary<string, SafetensorsEntry> entries,
        IReadOnlyDictionary<string, string> metadata)
    {
        FilePath = path;
        DataStart = dataStart;
        DataLength = dataLength;
        _entries = entries;
        Metadata = metadata;
        Names = entries.Keys.OrderBy(n => n, StringComparer.Ordinal).ToArray();
        if (dataLength > 0)
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(dataStart, dataLength, MemoryMappedFileAccess.Read);
        }
    }

    /// <summary>The file that was opened.</summary>
    public string FilePath { get; }

    /// <summary>Byte offset of the data section within the file.</summary>
    public long DataStart { get; }

    /// <summary>Size of the data section.</summary>
    public long DataLength { get; }

    /// <summary>The <c>__metadata__</c> map of the header (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensor names, sorted ordinally.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>All header entries by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries => _entries;

    /// <summary>Whether the file holds a tensor of that name.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>Opens and validates a safetensors file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="SafetensorsFormatException">The header is malformed or inconsistent.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Safetensors file '{full}' does not exist.", full);
        long fileLength;
        byte[] header;
        using (var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            fileLength = stream.Length;
            if (fileLength < 8) throw new SafetensorsFormatException(full, null, $"the file has {fileLength} bytes, fewer than the 8-byte header length");
            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            ulong headerLength = BitConverter.ToUInt64(lengthBytes);
            if (!BitConverter.IsLittleEndian) headerLength = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(headerLength);
            if (headerLength > (ulong)MaxHeaderBytes)
                throw new SafetensorsFormatException(full, null, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
            if (headerLength > (ulong)(fileLength - 8))
                throw new SafetensorsFormatException(full, null, $"header length {headerLength} runs past the end of the file ({fileLength} bytes)");
            if (headerLength < 2)
                throw new SafetensorsFormatException(full, null, $"header length {headerLength} is too short for a JSON object");
            header = new byte[headerLength];
            stream.ReadExactly(header);
        }
        long dataStart = 8 + header.Length;
        long dataLength = fileLength - dataStart;
        var (entries, metadata) = ParseHeader(full, header, dataLength);
        return new SafetensorsFile(full, dataStart, dataLength, entries, metadata);
    }

    private static (Dictionary<string, SafetensorsEntry>, IReadOnlyDictionary<string, string>) ParseHeader(string file, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw new SafetensorsFormatException(file, null, $"the header is not valid JSON ({ex.Message})", ex);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(file, null, $"the header is a JSON {doc.RootElement.ValueKind}, not an object");
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (sawMetadata) throw new SafetensorsFormatException(file, null, "the header has two __metadata__ entries");
                    sawMetadata = true;
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw new SafetensorsFormatException(file, null, "__metadata__ is not a JSON object");
                    foreach (var m in property.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new SafetensorsFormatException(file, null, $"__metadata__ value '{m.Name}' is not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                            throw new SafetensorsFormatException(file, null, $"__metadata__ key '{m.Name}' appears twice");
                    }
                    continue;
                }
                if (entries.ContainsKey(property.Name))
                    throw new SafetensorsFormatException(file, property.Name, "the tensor name appears twice in the header");
                entries.Add(property.Name, ParseEntry(file, property.Name, property.Value, dataLength));
            }
            CheckLayout(file, entries.Values, dataLength);
            return (entries, metadata);
        }
    }

    private static SafetensorsEntry ParseEntry(string file, string name, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object) throw new SafetensorsFormatException(file, name, "the entry is not a JSON object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(file, name, "the entry has no string 'dtype'");
        string dtype = dtypeElement.GetString()!;
        if (!SafetensorsDType.TryParse(dtype, out var scalarType, out int elementSize))
            throw new SafetensorsFormatException(file, name, $"unknown dtype '{dtype}' (supported: {string.Join(", ", SafetensorsDType.Names)})");
        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(file, name, "the entry has no 'shape' array");
        var shape = new long[shapeElement.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim))
                throw new SafetensorsFormatException(file, name, $"shape dimension {i} is not an integer");
            if (dim < 0) throw new SafetensorsFormatException(file, name, $"shape dimension {i} is negative ({dim})");
            try
            {
                elements = checked(elements * dim);
            }
            catch (OverflowException)
            {
                throw new SafetensorsFormatException(file, name, "the element count of the shape overflows 64 bits");
            }
            shape[i++] = dim;
        }
        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new SafetensorsFormatException(file, name, "the entry has no two-element 'data_offsets'");
        var begin = offsets[0];
        var end = offsets[1];
        if (begin.ValueKind != JsonValueKind.Number || !begin.TryGetInt64(out long b) || end.ValueKind != JsonValueKind.Number || !end.TryGetInt64(out long e))
            throw new SafetensorsFormatException(file, name, "data_offsets are not integers");
        if (b < 0 || e < b) throw new SafetensorsFormatException(file, name, $"data_offsets [{b}, {e}] are not an increasing pair of non-negative offsets");
        if (e > dataLength) throw new SafetensorsFormatException(file, name, $"data_offsets [{b}, {e}] lie outside the {dataLength}-byte data section");
        long expectedBytes;
        try
        {
            expectedBytes = checked(elements * elementSize);
        }
        catch (OverflowException)
        {
            throw new SafetensorsFormatException(file, name, "the byte size of the shape overflows 64 bits");
        }
        if (expectedBytes != e - b)
            throw new SafetensorsFormatException(file, name, $"shape [{string.Join(", ", shape)}] of {dtype} needs {expectedBytes} bytes but data_offsets span {e - b}");
        return new SafetensorsEntry(name, dtype, scalarType, shape, b, e);
    }

    private static void CheckLayout(string file, IEnumerable<SafetensorsEntry> entries, long dataLength)
    {
        long expectedBegin = 0;
        SafetensorsEntry? previous = null;
        foreach (var entry in entries.OrderBy(x => x.Begin).ThenBy(x => x.End))
        {
            if (entry.Begin < expectedBegin)
                throw new SafetensorsFormatException(file, entry.Name, $"its bytes [{entry.Begin}, {entry.End}) overlap those of '{previous!.Name}'");
            if (entry.Begin > expectedBegin)
                throw new SafetensorsFormatException(file, entry.Name, $"there is a gap of {entry.Begin - expectedBegin} unindexed bytes before it");
            expectedBegin = entry.End;
            previous = entry;
        }
        if (expectedBegin != dataLength)
            throw new SafetensorsFormatException(file, null, $"the data section has {dataLength - expectedBegin} bytes after the last tensor that no entry indexes");
    }

    /// <summary>Reads one tensor into a new CPU tensor of its stored dtype, or converted to <paramref name="dtype"/>,
    /// then moved to <paramref name="device"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name; the message names the file.</exception>
    public torch.Tensor ReadTensor(string name, torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_entries.TryGetValue(name, out var entry))
            throw new KeyNotFoundException($"Safetensors file '{FilePath}' has no tensor named '{name}'.");
        var tensor = torch.empty(entry.Shape, entry.ScalarType);
        if (entry.ByteLength > 0) CopyInto(entry, tensor);
        if (dtype is { } target && target != entry.ScalarType)
        {
            var converted = tensor.to_type(target);
            tensor.Dispose();
            tensor = converted;
        }
        if (device is not null && device.type != DeviceType.CPU)
        {
            var moved = tensor.to(device);
            tensor.Dispose();
            tensor = moved;
        }
        return tensor;
    }

    /// <summary>Reads every tensor (or those whose name passes <paramref name="filter"/>).</summary>
    public Dictionary<string, torch.Tensor> ReadAll(Func<string, bool>? filter = null, torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (string name in Names)
        {
            if (filter is null || filter(name)) result[name] = ReadTensor(name, dtype, device);
        }
        return result;
    }

    private unsafe void CopyInto(SafetensorsEntry entry, torch.Tensor tensor)
    {
        byte* basePointer = null;
        var handle = _view!.SafeMemoryMappedViewHandle;
        handle.AcquirePointer(ref basePointer);
        try
        {
            if (entry.ByteLength > int.MaxValue)
                throw new NotSupportedException($"Tensor '{entry.Name}' in '{FilePath}' has {entry.ByteLength} bytes; tensors above 2 GiB are not supported.");
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Big-endian hosts are not supported.");
            byte* source = basePointer + _view.PointerOffset + entry.Begin;
            new ReadOnlySpan<byte>(source, (int)entry.ByteLength).CopyTo(tensor.bytes);
        }
        finally
        {
            handle.ReleasePointer();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view?.Dispose();
        _map?.Dispose();
    }
}
