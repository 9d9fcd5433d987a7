using AttnDreamBooth.IO;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.IO;

public sealed class WeightFilesTests
{
    private static void WriteWeights(string path, params (string Name, float Value)[] tensors) =>
        SafetensorsWriter.Write(path, tensors.ToDictionary(t => t.Name, t => torch.full([2], Kept(t.Value))));

    private static void WriteIndex(string path, string json) => File.WriteAllText(path, json);

    [Fact]
    public void PlainWeightsAreFound()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("diffusion_pytorch_model.safetensors"), ("a", 1));
        WriteWeights(dir.File("diffusion_pytorch_model.fp16.safetensors"), ("a", 2));
        Assert.Equal([dir.File("diffusion_pytorch_model.safetensors")], WeightFiles.Resolve(dir.Path));
        Assert.Equal([dir.File("diffusion_pytorch_model.fp16.safetensors")], WeightFiles.Resolve(dir.Path, "fp16"));
    }

    [Fact]
    public void TransformersNameIsFound()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("model.safetensors"), ("a", 1));
        Assert.Equal([dir.File("model.safetensors")], WeightFiles.Resolve(dir.Path));
    }

    [Fact]
    public void OnlyVariantIsUsedWhenNoPlainWeightsExist()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("diffusion_pytorch_model.fp16.safetensors"), ("a", 2));
        Assert.Equal([dir.File("diffusion_pytorch_model.fp16.safetensors")], WeightFiles.Resolve(dir.Path));
    }

    [Fact]
    public void SeveralVariantsWithoutPlainWeightsAreAnError()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("diffusion_pytorch_model.fp16.safetensors"), ("a", 2));
        WriteWeights(dir.File("diffusion_pytorch_model.ema.safetensors"), ("a", 3));
        var ex = Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(dir.Path));
        Assert.Contains("ema, fp16", ex.Problem);
    }

    [Fact]
    public void MissingVariantIsAnErrorNamingIt()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("diffusion_pytorch_model.safetensors"), ("a", 1));
        var ex = Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(dir.Path, "fp16"));
        Assert.Contains("'fp16'", ex.Problem);
        Assert.Equal(dir.Path, ex.FilePath);
    }

    [Fact]
    public void ShardedWeightsResolveAndLoadAsOneSource()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("diffusion_pytorch_model-00001-of-00002.safetensors"), ("a", 1), ("b", 2));
        WriteWeights(dir.File("diffusion_pytorch_model-00002-of-00002.safetensors"), ("c", 3));
        WriteIndex(dir.File("diffusion_pytorch_model.safetensors.index.json"), """
            {"metadata": {"total_size": 24}, "weight_map": {
              "a": "diffusion_pytorch_model-00001-of-00002.safetensors",
              "b": "diffusion_pytorch_model-00001-of-00002.safetensors",
              "c": "diffusion_pytorch_model-00002-of-00002.safetensors"}}
            """);
        var files = WeightFiles.Resolve(dir.Path);
        Assert.Equal([dir.File("diffusion_pytorch_model-00001-of-00002.safetensors"), dir.File("diffusion_pytorch_model-00002-of-00002.safetensors")], files);
        using var source = StateDictSource.OpenComponent(dir.Path);
        Assert.Equal(["a", "b", "c"], source.Names.Order(StringComparer.Ordinal));
        using var c = source.Read("c");
        Assert.Equal(3f, c[0].item<float>());
        Assert.Equal(files[1], source.FileOf("c"));
    }

    [Fact]
    public void ShardedVariantIsFoundExplicitlyAndAsTheOnlyVariant()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("diffusion_pytorch_model.fp16-00001-of-00002.safetensors"), ("a", 1));
        WriteWeights(dir.File("diffusion_pytorch_model.fp16-00002-of-00002.safetensors"), ("b", 2));
        WriteIndex(dir.File("diffusion_pytorch_model.safetensors.index.fp16.json"), """
            {"weight_map": {"a": "diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
                            "b": "diffusion_pytorch_model.fp16-00002-of-00002.safetensors"}}
            """);
        Assert.Equal(2, WeightFiles.Resolve(dir.Path, "fp16").Count);
        Assert.Equal(2, WeightFiles.Resolve(dir.Path).Count);
    }

    [Theory]
    [InlineData("../outside.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("sub/dir.safetensors")]
    [InlineData("..")]
    [InlineData("")]
    public void ShardPathTraversalIsRejected(string shard)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string component = dir.File("unet");
        Directory.CreateDirectory(component);
        WriteWeights(dir.File("outside.safetensors"), ("a", 1));
        WriteIndex(Path.Combine(component, "diffusion_pytorch_model.safetensors.index.json"),
            "{\"weight_map\": {\"a\": " + System.Text.Json.JsonSerializer.Serialize(shard) + "}}");
        var ex = Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(component));
        Assert.Equal("weight_map", ex.Key);
        Assert.Contains("inside the folder", ex.Problem);
    }

    [Fact]
    public void MissingShardIsAnErrorNamingIt()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("model-00001-of-00002.safetensors"), ("a", 1));
        WriteIndex(dir.File("model.safetensors.index.json"), """
            {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
            """);
        var ex = Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(dir.Path));
        Assert.Contains("model-00002-of-00002.safetensors", ex.Problem);
        Assert.Equal(dir.File("model.safetensors.index.json"), ex.FilePath);
    }

    [Fact]
    public void MalformedIndexIsAnError()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteIndex(dir.File("model.safetensors.index.json"), """{"weight_map": []}""");
        Assert.Equal("weight_map", Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(dir.Path)).Key);
        WriteIndex(dir.File("model.safetensors.index.json"), """{"weight_map": {"a": 5}}""");
        Assert.Equal("weight_map", Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(dir.Path)).Key);
        WriteIndex(dir.File("model.safetensors.index.json"), """{"weight_map": {}}""");
        Assert.Contains("no shards", Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(dir.Path)).Problem);
    }

    [Fact]
    public void TensorInTwoShardsIsAnError()
    {
        using var dir = TestPaths.CreateTempDirectory();
        WriteWeights(dir.File("one.safetensors"), ("a", 1));
        WriteWeights(dir.File("two.safetensors"), ("a", 2));
        var ex = Assert.Throws<InvalidWeightsException>(() => StateDictSource.Open([dir.File("one.safetensors"), dir.File("two.safetensors")]));
        Assert.Equal("a", ex.TensorName);
        Assert.Contains(dir.File("one.safetensors"), ex.Message);
    }

    [Theory]
    [InlineData("diffusion_pytorch_model.bin")]
    [InlineData("pytorch_model.bin")]
    [InlineData("model.ckpt")]
    [InlineData("weights.PT")]
    public void PickleOnlyIsRefusedWithoutReadingIt(string fileName)
    {
        using var dir = TestPaths.CreateTempDirectory();
        // A dangling link: any attempt to open the pickle would fail with FileNotFoundException instead.
        string pickle = dir.File(fileName);
        File.CreateSymbolicLink(pickle, dir.File("does-not-exist"));
        var ex = Assert.Throws<InvalidWeightsException>(() => WeightFiles.Resolve(dir.Path));
        Assert.Equal(pickle, ex.FilePath);
        Assert.Contains("arbitrary code", ex.Message);
        Assert.Contains("safetensors", ex.Message);
        Assert.Throws<InvalidWeightsException>(() => StateDictSource.OpenComponent(dir.Path));
    }

    [Fact]
    public void SafetensorsWinOverAPickleNextToThem()
    {
        using var dir = TestPaths.CreateTempDirectory();
        File.WriteAllText(dir.File("diffusion_pytorch_model.bin"), "not really a pickle");
        WriteWeights(dir.File("diffusion_pytorch_model.safetensors"), ("a", 1));
        Assert.Equal([dir.File("diffusion_pytorch_model.safetensors")], WeightFiles.Resolve(dir.Path));
    }

    [Fact]
    public void EmptyOrMissingFolderIsAnError()
    {
        using var dir = TestPaths.CreateTempDirectory();
        Assert.Contains("no safetensors weights", Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(dir.Path)).Problem);
        Assert.Contains("does not exist", Assert.Throws<ModelConfigException>(() => WeightFiles.Resolve(dir.File("x"))).Problem);
    }
}
