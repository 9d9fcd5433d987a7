using System.Text;
using System.Text.Json;
using TorchSharp;

namespace AttnDreamBooth.IO;

/// <summary>Writes tensors to the safetensors format, atomically (temp file + rename).</summary>
public static class SafetensorsWriter
{
    /// <summary>Writes <paramref name="tensors"/> (any device, any supported dtype) to <paramref name="path"/>.
    /// Entries are ordered by name; the header is padded with spaces to a multiple of 8 bytes.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var names = tensors.Keys.OrderBy(n => n, StringComparer.Ordinal).ToArray();
        var header = BuildHeader(names, tensors, metadata, out long dataLength);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BitConverter.TryWriteBytes(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (string name in names)
            {
                using var scope = torch.NewDisposeScope();
                var cpu = tensors[name].detach().cpu().contiguous();
                if (cpu.NumberOfElements > 0) stream.Write(cpu.bytes);
            }
        });
    }

    /// <summary>Asynchronous wrapper of <see cref="Write"/> that runs the I/O off the caller's thread.</summary>
    public static Task WriteAsync(string path, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, CancellationToken ct = default) =>
        Task.Run(() => Write(path, tensors, metadata), ct);

    private static byte[] BuildHeader(string[] names, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata, out long offset)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            offset = 0;
            foreach (string name in names)
            {
                if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor.", nameof(tensors));
                if (Encoding.UTF8.GetByteCount(name) > SafetensorsFile.MaxNameBytes)
                    throw new ArgumentException($"Tensor name '{name[..Math.Min(name.Length, 64)]}…' is longer than {SafetensorsFile.MaxNameBytes} UTF-8 bytes.", nameof(tensors));
                var t = tensors[name] ?? throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
                string dtype = SafetensorsDType.NameOf(t.dtype);
                long bytes = t.NumberOfElements * SafetensorsDType.ElementSize(t.dtype);
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (long d in t.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int padded = (int)((buffer.Length + 7) / 8 * 8);
        var header = new byte[padded];
        buffer.ToArray().CopyTo(header, 0);
        for (long i = buffer.Length; i < padded; i++) header[i] = (byte)' ';
        return header;
    }
}
