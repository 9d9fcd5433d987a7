using System.Buffers.Binary;
using System.Text;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Tests.Limits;

/// <summary>A tensor declared at 64 GiB in a (sparse) 64 GiB file is refused before anything is allocated; a file
/// truncated after it was opened gives a typed error on read (positioned reads, no memory map to SIGBUS on).
/// Bounded: the sparse file occupies no disk blocks, nothing is allocated, each case waits at most 30 s.</summary>
public sealed class SafetensorsLimitTests
{
    private static string WriteHeader(string path, string json, long dataBytes)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        using var stream = new FileStream(path, FileMode.CreateNew);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
        stream.SetLength(8 + header.Length + dataBytes);
        return path;
    }

    [Fact]
    public async Task ATensorDeclaredAt64GiBIsRefusedBeforeAllocation()
    {
        using var dir = TestPaths.CreateTempDirectory();
        long bytes = 64L << 30;
        string path = WriteHeader(dir.File("huge.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[" + (bytes / 4) + "],\"data_offsets\":[0," + bytes + "]}}", bytes);
        var work = Task.Run(() =>
        {
            using var file = SafetensorsFile.Open(path);
            return Assert.Throws<InvalidWeightsException>(() => file.ReadTensor("w"));
        });
        var error = await work.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains("MaxTensorBytes", error.Message);
    }

    [Fact]
    public void AFileTruncatedAfterOpeningGivesATypedError()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = WriteHeader(dir.File("t.safetensors"), """{"w":{"dtype":"F32","shape":[1024],"data_offsets":[0,4096]}}""", 4096);
        using var file = SafetensorsFile.Open(path);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite)) stream.SetLength(100);
        var error = Assert.Throws<InvalidWeightsException>(() => file.ReadTensor("w"));
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void ASymlinkToDevZeroOrAFifoIsNotOpened()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string link = dir.File("weights.safetensors");
        File.CreateSymbolicLink(link, "/dev/zero");
        var error = Assert.Throws<IOException>(() => SafetensorsFile.Open(link));
        Assert.Contains("resolves to '/dev/zero', which is a character device, not a regular file", error.Message);
        Assert.Contains("character device", error.Message);
    }
}
