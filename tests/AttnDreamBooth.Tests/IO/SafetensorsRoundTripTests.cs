using AttnDreamBooth.IO;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.IO;

public sealed class SafetensorsRoundTripTests
{
    [Fact]
    public void EverySupportedDTypeRoundTripsBitExactly()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var generator = new torch.Generator(1234);
        var tensors = new Dictionary<string, torch.Tensor>
        {
            ["f32"] = torch.randn([3, 5], generator: generator),
            ["f64"] = torch.randn([4], dtype: torch.float64, generator: generator),
            ["f16"] = torch.randn([2, 2, 3], generator: generator).to_type(torch.float16),
            ["bf16"] = torch.randn([7], generator: generator).to_type(torch.bfloat16),
            ["i64"] = torch.arange(Kept(-5), Kept(6), Kept(1), dtype: torch.int64),
            ["i32"] = torch.arange(Kept(-3), Kept(3), Kept(1), dtype: torch.int32),
            ["i16"] = torch.arange(Kept(-2), Kept(2), Kept(1), dtype: torch.int16),
            ["i8"] = torch.arange(Kept(-128), Kept(127), Kept(17), dtype: torch.int8),
            ["u8"] = torch.arange(Kept(0), Kept(255), Kept(13), dtype: torch.uint8),
            ["bool"] = torch.tensor(new[] { true, false, true }),
            ["scalar"] = torch.tensor(3.5f),
            ["empty"] = torch.zeros([0, 4]),
        };
        string path = dir.File("all.safetensors");
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ü" });

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), file.Names);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("ü", file.Metadata["note"]);
        Assert.Equal(0, (file.DataStart - 8) % 8);
        foreach (var (name, expected) in tensors)
        {
            using var actual = file.ReadTensor(name);
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(expected.bytes.SequenceEqual(actual.bytes), name);
        }
    }

    [Fact]
    public void ReadConvertsDTypeOnRequest()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("h.safetensors");
        var half = torch.tensor(new[] { 1.5f, -2.25f }).to_type(torch.float16);
        SafetensorsWriter.Write(path, new Dictionary<string, torch.Tensor> { ["w"] = half });
        using var file = SafetensorsFile.Open(path);
        using var t = file.ReadTensor("w", torch.float32);
        Assert.Equal(torch.float32, t.dtype);
        Assert.Equal(new[] { 1.5f, -2.25f }, t.data<float>().ToArray());
    }

    [Fact]
    public void FixtureWeightFilesOpen()
    {
        using var file = SafetensorsFile.Open(Path.Combine(TestPaths.TinySd1, "unet", "diffusion_pytorch_model.safetensors"));
        Assert.Contains("conv_in.weight", file.Names);
        Assert.Equal("F32", file.Entries["conv_in.weight"].DType);
    }

    [Fact]
    public void WriteLeavesNoTempFileAndReplacesAtomically()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("x.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(2) });
        SafetensorsWriter.Write(path, new Dictionary<string, torch.Tensor> { ["b"] = torch.zeros(3) });
        Assert.Equal(["x.safetensors"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["b"], file.Names);
    }
}

public sealed class SafetensorsReadErrorTests
{
    [Fact]
    public void UnknownTensorNameNamesTheFile()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("one.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(2) });
        using var file = SafetensorsFile.Open(path);
        var ex = Assert.Throws<KeyNotFoundException>(() => file.ReadTensor("b"));
        Assert.Contains(path, ex.Message);
        Assert.Contains("'b'", ex.Message);
    }

    [Fact]
    public void ReadAfterDisposeThrows()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("one.safetensors");
        SafetensorsWriter.Write(path, new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(2) });
        var file = SafetensorsFile.Open(path);
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.ReadTensor("a"));
    }

    [Fact]
    public void WriterRefusesTheReservedMetadataName()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var ex = Assert.Throws<ArgumentException>(() =>
            SafetensorsWriter.Write(dir.File("x.safetensors"), new Dictionary<string, torch.Tensor> { ["__metadata__"] = torch.ones(1) }));
        Assert.Contains("__metadata__", ex.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
