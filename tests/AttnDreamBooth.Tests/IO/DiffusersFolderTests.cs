using System.Security.Cryptography;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Tests.IO;

public sealed class DiffusersFolderTests
{
    private const string Hash = "0123456789abcdef0123456789abcdef01234567";

    /// <summary>Builds a Hugging Face hub cache entry the way huggingface_hub lays it out: content-addressed blobs
    /// and snapshot folders of relative symlinks to them.</summary>
    private static string MakeCacheEntry(string root, IEnumerable<string> snapshotHashes, string? refMain)
    {
        string entry = Path.Combine(root, "models--org--tiny-sd1");
        string blobs = Path.Combine(entry, "blobs");
        Directory.CreateDirectory(blobs);
        foreach (string hash in snapshotHashes)
        {
            string snapshot = Path.Combine(entry, "snapshots", hash);
            foreach (string source in Directory.EnumerateFiles(TestPaths.TinySd1, "*", SearchOption.AllDirectories))
            {
                string relative = Path.GetRelativePath(TestPaths.TinySd1, source);
                string blobName = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(source)));
                string blob = Path.Combine(blobs, blobName);
                if (!File.Exists(blob)) File.Copy(source, blob);
                string link = Path.Combine(snapshot, relative);
                Directory.CreateDirectory(Path.GetDirectoryName(link)!);
                File.CreateSymbolicLink(link, Path.GetRelativePath(Path.GetDirectoryName(link)!, blob));
            }
        }
        if (refMain is not null)
        {
            Directory.CreateDirectory(Path.Combine(entry, "refs"));
            File.WriteAllText(Path.Combine(entry, "refs", "main"), refMain);
        }
        return entry;
    }

    [Fact]
    public void PipelineFolderOpens()
    {
        var folder = DiffusersFolder.Open(TestPaths.TinySd1);
        Assert.Equal(Path.GetFullPath(TestPaths.TinySd1), folder.Root);
        Assert.Equal(Path.Combine(folder.Root, "unet"), folder.ComponentPath("unet"));
        Assert.Equal(Path.Combine(folder.Root, "unet", "config.json"), folder.ConfigPath("unet"));
        Assert.Equal(Path.Combine(folder.Root, "scheduler", "scheduler_config.json"), folder.ConfigPath("scheduler"));
        Assert.Equal([Path.Combine(folder.Root, "text_encoder", "model.safetensors")], folder.WeightPaths("text_encoder"));
        Assert.Equal([Path.Combine(folder.Root, "unet", "diffusion_pytorch_model.safetensors")], folder.WeightPaths("unet"));
    }

    [Fact]
    public void CacheEntryResolvesThroughRefsMainAndLoadsThroughSymlinks()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string entry = MakeCacheEntry(dir.Path, [Hash, "fedcba9876543210fedcba9876543210fedcba98"], Hash + "\n");
        var folder = DiffusersFolder.Open(entry);
        Assert.Equal(Path.Combine(entry, "snapshots", Hash), folder.Root);
        using var cached = StateDictSource.Open(folder.WeightPaths("vae"));
        using var plain = StateDictSource.OpenComponent(Path.Combine(TestPaths.TinySd1, "vae"));
        Assert.Equal(plain.Names.Order(StringComparer.Ordinal), cached.Names.Order(StringComparer.Ordinal));
        string name = plain.Names.First();
        using var a = plain.Read(name);
        using var b = cached.Read(name);
        Assert.True(a.bytes.SequenceEqual(b.bytes));
    }

    [Fact]
    public void CacheEntryWithoutRefsUsesTheOnlySnapshot()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string entry = MakeCacheEntry(dir.Path, [Hash], refMain: null);
        Assert.Equal(Path.Combine(entry, "snapshots", Hash), DiffusersFolder.Open(entry).Root);
    }

    [Fact]
    public void CacheEntryWithSeveralSnapshotsAndNoRefsIsAnError()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string entry = MakeCacheEntry(dir.Path, [Hash, "fedcba9876543210fedcba9876543210fedcba98"], refMain: null);
        var ex = Assert.Throws<ModelConfigException>(() => DiffusersFolder.Open(entry));
        Assert.Contains("2 snapshots", ex.Problem);
        Assert.Equal(Path.Combine(entry, "snapshots"), ex.FilePath);
    }

    [Theory]
    [InlineData("../../../etc")]
    [InlineData("..")]
    [InlineData("")]
    [InlineData("9999999999999999999999999999999999999999")]
    public void BadRefsMainIsAnErrorNamingIt(string refMain)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string entry = MakeCacheEntry(dir.Path, [Hash], refMain);
        var ex = Assert.Throws<ModelConfigException>(() => DiffusersFolder.Open(entry));
        Assert.Contains(Path.Combine(entry, refMain.Length == 40 ? Path.Combine("snapshots", refMain) : Path.Combine("refs", "main")), ex.FilePath);
    }

    [Fact]
    public void MissingFoldersAndComponentsAreErrors()
    {
        using var dir = TestPaths.CreateTempDirectory();
        Assert.Contains("does not exist", Assert.Throws<ModelConfigException>(() => DiffusersFolder.Open(dir.File("absent"))).Problem);
        Assert.Contains("not a diffusers pipeline", Assert.Throws<ModelConfigException>(() => DiffusersFolder.Open(dir.Path)).Problem);

        string copy = dir.File("pipe");
        Directory.CreateDirectory(copy);
        File.Copy(Path.Combine(TestPaths.TinySd1, "model_index.json"), Path.Combine(copy, "model_index.json"));
        var folder = DiffusersFolder.Open(copy);
        var missing = Assert.Throws<ModelConfigException>(() => folder.ComponentPath("unet"));
        Assert.Equal(Path.Combine(copy, "unet"), missing.FilePath);
        Assert.Contains("folder is missing", missing.Problem);
        var unlisted = Assert.Throws<ModelConfigException>(() => folder.ComponentPath("controlnet"));
        Assert.Equal("controlnet", unlisted.Key);
        Directory.CreateDirectory(Path.Combine(copy, "unet"));
        Assert.Contains("configuration file is missing", Assert.Throws<ModelConfigException>(() => folder.ConfigPath("unet")).Problem);
    }
}
