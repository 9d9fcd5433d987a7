using AttnDreamBooth.IO;
using TorchSharp;
using static TorchSharp.torch.nn;

namespace AttnDreamBooth.Tests.IO;

public sealed class StateDictLoaderTests
{
    /// <summary>Keys: 0.weight [4,3], 0.bias [4], 2.weight [2,4], 2.bias [2].</summary>
    private static torch.nn.Module<torch.Tensor, torch.Tensor> Net(long seed, torch.ScalarType dtype = torch.ScalarType.Float32)
    {
        torch.manual_seed(seed);
        var net = Sequential(("0", Linear(3, 4)), ("1", ReLU()), ("2", Linear(4, 2)));
        if (dtype != torch.ScalarType.Float32) net.to(dtype);
        return net;
    }

    private static Dictionary<string, torch.Tensor> StateOf(torch.nn.Module module) =>
        module.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());

    private static string Write(TempDirectory dir, IReadOnlyDictionary<string, torch.Tensor> tensors, string name = "w.safetensors")
    {
        string path = dir.File(name);
        SafetensorsWriter.Write(path, tensors);
        return path;
    }

    private static bool SameBytes(torch.Tensor a, torch.Tensor b) => a.dtype == b.dtype && a.bytes.SequenceEqual(b.bytes);

    [Fact]
    public void ExactLoadCopiesEveryTensor()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var expected = StateOf(Net(1));
        string path = Write(dir, expected);
        var net = Net(2);
        using var source = StateDictSource.Open([path]);
        var report = StateDictLoader.Load(net, source);
        Assert.True(report.IsExact);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), report.Loaded.Order(StringComparer.Ordinal));
        foreach (var (key, value) in net.state_dict()) Assert.True(SameBytes(expected[key], value), key);
        Assert.StartsWith("4 loaded, 0 missing", report.Describe());
    }

    [Fact]
    public void StrictLoadReportsMissingUnexpectedAndMismatchedByName()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var tensors = StateOf(Net(1));
        tensors.Remove("2.bias");
        tensors["extra.weight"] = torch.zeros(1);
        tensors["0.weight"] = torch.zeros(4, 5);
        string path = Write(dir, tensors);
        var net = Net(2);
        using var source = StateDictSource.Open([path]);
        var ex = Assert.Throws<InvalidWeightsException>(() => StateDictLoader.Load(net, source));
        Assert.Equal(["2.bias"], ex.Report!.Missing);
        Assert.Equal(["extra.weight"], ex.Report!.Unexpected);
        var mismatch = Assert.Single(ex.Report!.Mismatched);
        Assert.Equal("0.weight", mismatch.Name);
        Assert.Equal(new long[] { 4, 3 }, mismatch.Expected);
        Assert.Equal(new long[] { 4, 5 }, mismatch.Actual);
        Assert.Contains(path, ex.Message);
        foreach (string name in new[] { "2.bias", "extra.weight", "0.weight: module [4, 3], file [4, 5]" }) Assert.Contains(name, ex.Message);
    }

    [Fact]
    public void FailedStrictLoadLeavesTheModuleUntouched()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var tensors = StateOf(Net(1));
        tensors.Remove("2.bias");
        string path = Write(dir, tensors);
        var net = Net(2);
        var before = StateOf(net);
        using var source = StateDictSource.Open([path]);
        Assert.Throws<InvalidWeightsException>(() => StateDictLoader.Load(net, source));
        foreach (var (key, value) in net.state_dict()) Assert.True(SameBytes(before[key], value), key);
    }

    [Fact]
    public void NonStrictLoadLoadsTheRestAndReports()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var tensors = StateOf(Net(1));
        tensors.Remove("2.bias");
        tensors["extra"] = torch.zeros(1);
        string path = Write(dir, tensors);
        var net = Net(2);
        var before = StateOf(net);
        using var source = StateDictSource.Open([path]);
        var report = StateDictLoader.Load(net, source, new StateDictLoadOptions { Strict = false });
        Assert.False(report.IsExact);
        Assert.Equal(["2.bias"], report.Missing);
        Assert.Equal(["extra"], report.Unexpected);
        Assert.Equal(3, report.Loaded.Count);
        var after = net.state_dict();
        Assert.True(SameBytes(before["2.bias"], after["2.bias"]));
        Assert.True(SameBytes(tensors["0.weight"], after["0.weight"]));
    }

    [Fact]
    public void ShapeMismatchThrowsEvenWhenNotStrict()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var tensors = StateOf(Net(1));
        tensors["2.bias"] = torch.zeros(3);
        string path = Write(dir, tensors);
        var net = Net(2);
        var before = StateOf(net);
        using var source = StateDictSource.Open([path]);
        var ex = Assert.Throws<InvalidWeightsException>(() => StateDictLoader.Load(net, source, new StateDictLoadOptions { Strict = false }));
        Assert.Equal("2.bias", Assert.Single(ex.Report!.Mismatched).Name);
        foreach (var (key, value) in net.state_dict()) Assert.True(SameBytes(before[key], value), key);
    }

    [Fact]
    public void HalfPrecisionFileLoadsIntoFloatModule()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var halves = StateOf(Net(1)).ToDictionary(p => p.Key, p => p.Value.to_type(torch.float16));
        string path = Write(dir, halves);
        var net = Net(2);
        using var source = StateDictSource.Open([path]);
        StateDictLoader.Load(net, source);
        foreach (var (key, value) in net.state_dict())
        {
            Assert.Equal(torch.float32, value.dtype);
            using var expected = halves[key].to_type(torch.float32);
            Assert.True(SameBytes(expected, value), key);
        }
    }

    [Theory]
    [InlineData(torch.ScalarType.Float16)]
    [InlineData(torch.ScalarType.BFloat16)]
    public void FloatFileLoadsIntoReducedPrecisionModule(torch.ScalarType dtype)
    {
        using var dir = TestPaths.CreateTempDirectory();
        var floats = StateOf(Net(1));
        string path = Write(dir, floats);
        var net = Net(2, dtype);
        using var source = StateDictSource.Open([path]);
        StateDictLoader.Load(net, source);
        foreach (var (key, value) in net.state_dict())
        {
            Assert.Equal(dtype, value.dtype);
            using var expected = floats[key].to_type(dtype);
            Assert.True(SameBytes(expected, value), key);
        }
    }

    [Fact]
    public void KeyMapRenamesAndDropsKeys()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var expected = StateOf(Net(1));
        var stored = expected.ToDictionary(p => "model." + p.Key, p => p.Value);
        stored["model.ignored_buffer"] = torch.zeros(1);
        string path = Write(dir, stored);
        var net = Net(2);
        using var source = StateDictSource.Open([path]);
        var options = new StateDictLoadOptions { KeyMap = k => k == "model.ignored_buffer" ? null : k["model.".Length..] };
        var report = StateDictLoader.Load(net, source, options);
        Assert.True(report.IsExact);
        foreach (var (key, value) in net.state_dict()) Assert.True(SameBytes(expected[key], value), key);
    }

    [Fact]
    public void TwoStoredKeysMappingToOneModuleKeyIsAnError()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var stored = StateOf(Net(1));
        stored["old.0.bias"] = stored["0.bias"].clone();
        string path = Write(dir, stored);
        using var source = StateDictSource.Open([path]);
        var ex = Assert.Throws<InvalidWeightsException>(() =>
            StateDictLoader.Load(Net(2), source, new StateDictLoadOptions { KeyMap = k => k.StartsWith("old.", StringComparison.Ordinal) ? k[4..] : k }));
        Assert.Contains("0.bias", ex.Message);
    }

    [Fact]
    public void OptionalModuleKeysMayBeAbsent()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var stored = StateOf(Net(1));
        stored.Remove("2.bias");
        string path = Write(dir, stored);
        using var source = StateDictSource.Open([path]);
        var report = StateDictLoader.Load(Net(2), source, new StateDictLoadOptions { OptionalModuleKey = k => k == "2.bias" });
        Assert.True(report.IsExact);
    }

    [Fact]
    public void LoadComponentReadsAFolderWithVariant()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var expected = StateOf(Net(1));
        Write(dir, expected.ToDictionary(p => p.Key, p => p.Value.to_type(torch.float16)), "diffusion_pytorch_model.fp16.safetensors");
        var net = Net(2);
        var report = StateDictLoader.LoadComponent(net, dir.Path, "fp16");
        Assert.True(report.IsExact);
        using var expectedWeight = expected["0.weight"].to_type(torch.float16).to_type(torch.float32);
        Assert.True(SameBytes(expectedWeight, net.state_dict()["0.weight"]));
    }
}
