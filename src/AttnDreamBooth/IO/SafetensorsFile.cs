using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>
/// A safetensors file opened for reading. The header is parsed and fully validated on open; tensor bytes are
/// read on demand from a memory map straight into native tensor storage, so no managed copy of the weights
/// is ever made.
/// </summary>
/// <remarks>Not thread-safe for concurrent reads of the same instance; open one per thread.</remarks>
internal sealed class SafetensorsFile : IDisposable
{
    /// <summary>Most dimensions a tensor may have (libtorch itself supports far fewer in most kernels).</summary>
    public const int MaxRank = 64;

    /// <summary>Longest tensor name or metadata key accepted, in UTF-8 bytes after JSON unescaping.</summary>
    public const int MaxNameBytes = 4096;

    // Root object → entry object → shape/offsets array; one spare level for unknown fields.
    private const int MaxJsonDepth = 4;

    // Tensors are read with positioned reads (pread) through the handle the header was read from, not through a memory
    // map: a file truncated while open then yields a short read and a typed error instead of SIGBUS.
    private readonly FileStream? _stream;
    private readonly Dictionary<string, SafetensorsEntry> _entries;
    private bool _disposed;

    private SafetensorsFile(string path, FileStream stream, long dataStart, long dataLength, Dictionary<string, SafetensorsEntry> entries,
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
            // Mapped from the handle the header was read through: mapping by path again could map a different
            // file if the path was replaced in between (e.g. by an atomic checkpoint write), pairing one file's
            // header with another's bytes.
            _stream = stream;
        }
        else
        {
            stream.Dispose();
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
    /// <remarks>Memory used while opening is bounded by the header's actual size (at most
    /// <see cref="ResourceLimits.MaxSafetensorsHeaderBytes"/>); sizes claimed by the file never drive an allocation.</remarks>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidWeightsException">The header is malformed or inconsistent.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"Safetensors file '{full}' does not exist.", full);
        RegularFile.Require(full);
        // bufferSize 0: reads go through RandomAccess, so the stream needs no buffer of its own.
        var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        try
        {
            var handle = stream.SafeFileHandle;
            long fileLength = RandomAccess.GetLength(handle);
            if (fileLength < 8) throw new InvalidWeightsException(full, null, $"the file has {fileLength} bytes, fewer than the 8-byte header length");
            Span<byte> lengthBytes = stackalloc byte[8];
            ReadExactly(handle, lengthBytes, 0, full);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            // Both limits are checked before anything is allocated, so a forged length cannot exhaust memory.
            long maxHeader = ResourceLimits.Current.MaxSafetensorsHeaderBytes;
            if (headerLength > (ulong)maxHeader)
                throw new InvalidWeightsException(full, null, $"the header length {headerLength} {ResourceLimits.Exceeds(nameof(ResourceLimits.MaxSafetensorsHeaderBytes), maxHeader)}");
            if (headerLength > (ulong)(fileLength - 8))
                throw new InvalidWeightsException(full, null, $"header length {headerLength} runs past the end of the file ({fileLength} bytes)");
            if (headerLength < 2)
                throw new InvalidWeightsException(full, null, $"header length {headerLength} is too short for a JSON object");
            var header = new byte[headerLength];
            ReadExactly(handle, header, 8, full);
            long dataStart = 8 + header.Length;
            long dataLength = fileLength - dataStart;
            var (entries, metadata) = ParseHeader(full, header, dataLength);
            return new SafetensorsFile(full, stream, dataStart, dataLength, entries, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset, string file)
    {
        while (buffer.Length > 0)
        {
            int read = RandomAccess.Read(handle, buffer, offset);
            if (read == 0) throw new InvalidWeightsException(file, null, "the file ended while reading the header (was it truncated while being opened?)");
            buffer = buffer[read..];
            offset += read;
        }
    }

    // The header is read with a forward-only reader rather than a DOM: a DOM costs several times the header's
    // size in bookkeeping, while this allocates only the names, metadata strings and shapes it keeps.
    private static (Dictionary<string, SafetensorsEntry>, IReadOnlyDictionary<string, string>) ParseHeader(string file, byte[] header, long dataLength)
    {
        var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = MaxJsonDepth, CommentHandling = JsonCommentHandling.Disallow });
        string? current = null;
        try
        {
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartObject)
                throw new InvalidWeightsException(file, null, $"the header is a JSON {Describe(reader.TokenType)}, not an object");
            bool sawMetadata = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = ReadName(ref reader, file, null, "tensor name");
                current = name == "__metadata__" ? null : name;
                reader.Read();
                if (name == "__metadata__")
                {
                    if (sawMetadata) throw new InvalidWeightsException(file, null, "the header has two __metadata__ entries");
                    sawMetadata = true;
                    ParseMetadata(ref reader, file, metadata);
                    continue;
                }
                if (entries.ContainsKey(name))
                    throw new InvalidWeightsException(file, name, "the tensor name appears twice in the header");
                entries.Add(name, ParseEntry(ref reader, file, name, dataLength));
                current = null;
            }
            if (reader.TokenType != JsonTokenType.EndObject)
                throw new InvalidWeightsException(file, null, $"expected a tensor name or the end of the header, found a JSON {Describe(reader.TokenType)}");
            // Only whitespace (the format's padding) may follow the object; anything else makes the reader throw.
            if (reader.Read()) throw new InvalidWeightsException(file, null, "the header has content after its JSON object");
        }
        catch (JsonException ex)
        {
            throw new InvalidWeightsException(file, current, $"the header is not valid JSON ({ex.Message})", ex);
        }
        CheckLayout(file, entries.Values, dataLength);
        return (entries, metadata);
    }

    private static void ParseMetadata(ref Utf8JsonReader reader, string file, Dictionary<string, string> metadata)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new InvalidWeightsException(file, null, $"__metadata__ is a JSON {Describe(reader.TokenType)}, not an object of strings");
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            string key = ReadName(ref reader, file, null, "__metadata__ key");
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
                throw new InvalidWeightsException(file, null, $"__metadata__ value '{Shorten(key)}' is a JSON {Describe(reader.TokenType)}, not a string");
            string value = ReadString(ref reader, file, null, $"__metadata__ value '{Shorten(key)}'");
            if (!metadata.TryAdd(key, value))
                throw new InvalidWeightsException(file, null, $"__metadata__ key '{Shorten(key)}' appears twice");
        }
    }

    private static SafetensorsEntry ParseEntry(ref Utf8JsonReader reader, string file, string name, long dataLength)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new InvalidWeightsException(file, name, $"the entry is a JSON {Describe(reader.TokenType)}, not an object");
        string? dtype = null;
        long[]? shape = null;
        long begin = -1, end = -1;
        bool sawOffsets = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("dtype"u8))
            {
                if (dtype is not null) throw new InvalidWeightsException(file, name, "the entry has two 'dtype' fields");
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                    throw new InvalidWeightsException(file, name, $"'dtype' is a JSON {Describe(reader.TokenType)}, not a string");
                dtype = ParseDType(ref reader, file, name);
            }
            else if (reader.ValueTextEquals("shape"u8))
            {
                if (shape is not null) throw new InvalidWeightsException(file, name, "the entry has two 'shape' fields");
                reader.Read();
                shape = ParseShape(ref reader, file, name);
            }
            else if (reader.ValueTextEquals("data_offsets"u8))
            {
                if (sawOffsets) throw new InvalidWeightsException(file, name, "the entry has two 'data_offsets' fields");
                sawOffsets = true;
                reader.Read();
                (begin, end) = ParseOffsets(ref reader, file, name);
            }
            else
            {
                // Unknown fields are tolerated, as by the reference implementation; MaxDepth bounds what Skip walks.
                reader.Read();
                reader.Skip();
            }
        }
        if (dtype is null) throw new InvalidWeightsException(file, name, "the entry has no 'dtype'");
        if (shape is null) throw new InvalidWeightsException(file, name, "the entry has no 'shape'");
        if (!sawOffsets) throw new InvalidWeightsException(file, name, "the entry has no 'data_offsets'");
        SafetensorsDType.TryParse(dtype, out var scalarType, out int elementSize);
        if (begin > end) throw new InvalidWeightsException(file, name, $"data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLength) throw new InvalidWeightsException(file, name, $"data_offsets [{begin}, {end}] lie outside the {dataLength}-byte data section");
        long elements = 1;
        foreach (long dim in shape)
        {
            if (!TryMultiply(elements, dim, out elements))
                throw new InvalidWeightsException(file, name, $"the element count of shape [{string.Join(", ", shape)}] overflows 64 bits");
        }
        if (!TryMultiply(elements, elementSize, out long expectedBytes))
            throw new InvalidWeightsException(file, name, $"the byte size of shape [{string.Join(", ", shape)}] of {dtype} overflows 64 bits");
        if (expectedBytes != end - begin)
            throw new InvalidWeightsException(file, name, $"shape [{string.Join(", ", shape)}] of {dtype} needs {expectedBytes} bytes but data_offsets span {end - begin}");
        return new SafetensorsEntry(name, dtype, scalarType, shape, begin, end);
    }

    private static string ParseDType(ref Utf8JsonReader reader, string file, string name)
    {
        // Compared as UTF-8 against the known names so an unknown (possibly huge) value is never materialized.
        foreach (string known in SafetensorsDType.Names)
        {
            if (reader.ValueTextEquals(known)) return known;
        }
        string shown = reader.ValueSpan.Length <= 32 ? ReadString(ref reader, file, name, "'dtype'") : $"<{reader.ValueSpan.Length} bytes>";
        throw new InvalidWeightsException(file, name, $"unknown dtype '{shown}' (supported: {string.Join(", ", SafetensorsDType.Names)})");
    }

    private static long[] ParseShape(ref Utf8JsonReader reader, string file, string name)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new InvalidWeightsException(file, name, $"'shape' is a JSON {Describe(reader.TokenType)}, not an array");
        Span<long> dims = stackalloc long[MaxRank];
        int rank = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (rank == MaxRank) throw new InvalidWeightsException(file, name, $"the shape has more than {MaxRank} dimensions");
            if (reader.TokenType != JsonTokenType.Number)
                throw new InvalidWeightsException(file, name, $"shape dimension {rank} is a JSON {Describe(reader.TokenType)}, not an integer");
            if (!reader.TryGetInt64(out long dim))
                throw new InvalidWeightsException(file, name, $"shape dimension {rank} ({Shorten(reader.ValueSpan)}) is not an integer in the 64-bit range");
            if (dim < 0) throw new InvalidWeightsException(file, name, $"shape dimension {rank} is negative ({dim})");
            dims[rank++] = dim;
        }
        return dims[..rank].ToArray();
    }

    private static (long Begin, long End) ParseOffsets(ref Utf8JsonReader reader, string file, string name)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new InvalidWeightsException(file, name, $"'data_offsets' is a JSON {Describe(reader.TokenType)}, not a [begin, end] array");
        Span<long> values = stackalloc long[2];
        int count = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (count == 2) throw new InvalidWeightsException(file, name, "'data_offsets' has more than two values");
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long value))
                throw new InvalidWeightsException(file, name, $"data_offsets value {count} is not an integer in the 64-bit range");
            if (value < 0) throw new InvalidWeightsException(file, name, $"data_offsets value {count} is negative ({value})");
            values[count++] = value;
        }
        if (count != 2) throw new InvalidWeightsException(file, name, $"'data_offsets' has {count} values, not two");
        return (values[0], values[1]);
    }

    private static string ReadName(ref Utf8JsonReader reader, string file, string? tensor, string what)
    {
        // An escaped name may be up to 6 times longer than its text (\uXXXX per byte); anything beyond that is
        // rejected before it is decoded.
        int stored = reader.ValueSpan.Length;
        if (stored > MaxNameBytes && (!reader.ValueIsEscaped || stored > 6 * MaxNameBytes))
            throw new InvalidWeightsException(file, tensor, $"a {what} of {stored} bytes exceeds the {MaxNameBytes}-byte limit (starts with '{Shorten(reader.ValueSpan)}')");
        string name = ReadString(ref reader, file, tensor, what);
        if (stored > MaxNameBytes && Encoding.UTF8.GetByteCount(name) > MaxNameBytes)
            throw new InvalidWeightsException(file, tensor, $"a {what} of {Encoding.UTF8.GetByteCount(name)} bytes exceeds the {MaxNameBytes}-byte limit (starts with '{Shorten(name)}')");
        return name;
    }

    private static string ReadString(ref Utf8JsonReader reader, string file, string? tensor, string what)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidWeightsException(file, tensor, $"the {what} is not valid UTF-8", ex);
        }
    }

    private static bool TryMultiply(long a, long b, out long product)
    {
        try
        {
            product = checked(a * b);
            return true;
        }
        catch (OverflowException)
        {
            product = 0;
            return false;
        }
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.None => "nothing",
        _ => token.ToString(),
    };

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..64] + "…";

    private static string Shorten(ReadOnlySpan<byte> utf8)
    {
        var head = utf8.Length <= 64 ? utf8 : utf8[..64];
        return Encoding.UTF8.GetString(head) + (utf8.Length > 64 ? "…" : "");
    }

    private static void CheckLayout(string file, IEnumerable<SafetensorsEntry> entries, long dataLength)
    {
        long expectedBegin = 0;
        SafetensorsEntry? previous = null;
        foreach (var entry in entries.OrderBy(x => x.Begin).ThenBy(x => x.End))
        {
            if (entry.Begin < expectedBegin)
                throw new InvalidWeightsException(file, entry.Name, $"its bytes [{entry.Begin}, {entry.End}) overlap those of '{previous!.Name}'");
            if (entry.Begin > expectedBegin)
                throw new InvalidWeightsException(file, entry.Name, $"there is a gap of {entry.Begin - expectedBegin} unindexed bytes before it");
            expectedBegin = entry.End;
            previous = entry;
        }
        if (expectedBegin != dataLength)
            throw new InvalidWeightsException(file, null, $"the data section has {dataLength - expectedBegin} bytes after the last tensor that no entry indexes");
    }

    /// <summary>Reads one tensor into a new CPU tensor of its stored dtype, or converted to <paramref name="dtype"/>,
    /// then moved to <paramref name="device"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name; the message names the file.</exception>
    public torch.Tensor ReadTensor(string name, torch.ScalarType? dtype = null, torch.Device? device = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_entries.TryGetValue(name, out var entry))
            throw new KeyNotFoundException($"Safetensors file '{FilePath}' has no tensor named '{name}'.");
        // Checked before the allocation: a header may declare any size.
        if (entry.ByteLength > ResourceLimits.Current.MaxTensorBytes)
            throw new InvalidWeightsException(FilePath, name, $"the tensor has {entry.ByteLength:N0} bytes, which {ResourceLimits.Exceeds(nameof(ResourceLimits.MaxTensorBytes), ResourceLimits.Current.MaxTensorBytes)}");
        if (entry.ByteLength > int.MaxValue)
            throw new InvalidWeightsException(FilePath, name, $"the tensor has {entry.ByteLength:N0} bytes; tensors above 2 GiB are not supported");
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

    private void CopyInto(SafetensorsEntry entry, torch.Tensor tensor)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Big-endian hosts are not supported.");
        var destination = tensor.bytes;
        long offset = DataStart + entry.Begin;
        while (destination.Length > 0)
        {
            int read = RandomAccess.Read(_stream!.SafeFileHandle, destination, offset);
            if (read <= 0)
                throw new InvalidWeightsException(FilePath, entry.Name, $"the file ended at byte {offset} while reading the tensor (bytes {DataStart + entry.Begin}–{DataStart + entry.End}); it was truncated after it was opened");
            destination = destination[read..];
            offset += read;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stream?.Dispose();
    }
}
