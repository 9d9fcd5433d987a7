using AttnDreamBooth.IO;
using AttnDreamBooth.Training;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Training;

/// <summary>The checkpoint folder format as a training loop of one's own uses it: write, list newest first, prune, read
/// back, and names that <see cref="CheckpointFiles.List"/> could never find refused up front.</summary>
public sealed class CheckpointFilesTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "adb-checkpoint-files-" + Guid.NewGuid().ToString("N"));

    private sealed record Description(int FormatVersion, long Step, IReadOnlyList<double> Losses);

    [Fact]
    public void CheckpointsAreWrittenListedNewestFirstPrunedAndReadBack()
    {
        for (long step = 1; step <= 4; step++)
        {
            using var weight = torch.full([2, 3], Kept(step * 0.5f));
            string folder = CheckpointFiles.Write(_root, $"checkpoint-{step:D4}", new Description(1, step, [1.0 / step]),
                new Dictionary<string, torch.Tensor> { ["w"] = weight }, "pt", keep: 2, prunable: _ => true);
            Assert.Equal(Path.Combine(_root, $"checkpoint-{step:D4}"), folder);
        }
        var listed = CheckpointFiles.List(_root);
        Assert.Equal([Path.Combine(_root, "checkpoint-0004"), Path.Combine(_root, "checkpoint-0003")], listed);
        var description = CheckpointFiles.ReadDescription<Description>(listed[0], "test checkpoint");
        Assert.Equal(4, description.Step);
        Assert.Equal([0.25], description.Losses);
        CheckpointFiles.RequireFormatVersion(listed[0], description.FormatVersion);
        var tensors = CheckpointFiles.ReadTensors(listed[0]);
        try
        {
            Assert.Equal(new float[] { 2, 2, 2, 2, 2, 2 }, tensors["w"].data<float>().ToArray());
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
        Assert.Contains("\"format_version\": 1", File.ReadAllText(Path.Combine(listed[0], CheckpointFiles.JsonFile)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("step-0001")]
    [InlineData("checkpoint-")]
    [InlineData("checkpoint-1/sub")]
    [InlineData("checkpoint-..")]
    public void NamesThatListingWouldNeverFindAreRefused(string name)
    {
        using var weight = torch.zeros(1);
        var e = Assert.Throws<ArgumentException>(() => CheckpointFiles.Write(_root, name, new Description(1, 0, []),
            new Dictionary<string, torch.Tensor> { ["w"] = weight }, "pt", keep: 1, prunable: _ => true));
        Assert.Equal("folderName", e.ParamName);
        Assert.False(Directory.Exists(_root) && Directory.EnumerateFileSystemEntries(_root).Any());
    }

    [Fact]
    public void AnUnknownFormatVersionAndADamagedDescriptionAreTypedErrors()
    {
        using var weight = torch.zeros(1);
        string folder = CheckpointFiles.Write(_root, "checkpoint-1", new Description(2, 0, []), new Dictionary<string, torch.Tensor> { ["w"] = weight }, "pt", 1, _ => true);
        var version = Assert.Throws<ModelConfigException>(() => CheckpointFiles.RequireFormatVersion(folder, CheckpointFiles.ReadDescription<Description>(folder, "test checkpoint").FormatVersion));
        Assert.Contains("version 2", version.Message, StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(folder, CheckpointFiles.JsonFile), "{ not json");
        var damaged = Assert.Throws<ModelConfigException>(() => CheckpointFiles.ReadDescription<Description>(folder, "test checkpoint"));
        Assert.Contains("test checkpoint", damaged.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
