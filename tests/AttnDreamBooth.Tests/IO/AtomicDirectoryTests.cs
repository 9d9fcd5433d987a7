using AttnDreamBooth.IO;

namespace AttnDreamBooth.Tests.IO;

public sealed class AtomicDirectoryTests
{
    [Fact]
    public void ReplacesAnExistingFolderWhole()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string target = dir.File("model");
        AtomicFile.WriteDirectory(target, temp => File.WriteAllText(Path.Combine(temp, "a.txt"), "first"));
        AtomicFile.WriteDirectory(target, temp => File.WriteAllText(Path.Combine(temp, "b.txt"), "second"));
        Assert.Equal(["b.txt"], Directory.GetFiles(target).Select(Path.GetFileName));
        Assert.Equal([target], Directory.GetDirectories(dir.Path));
    }

    [Fact]
    public void AFailureWhileFillingLeavesThePreviousFolderIntact()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string target = dir.File("model");
        AtomicFile.WriteDirectory(target, temp => File.WriteAllText(Path.Combine(temp, "a.txt"), "kept"));
        Assert.Throws<IOException>(() => AtomicFile.WriteDirectory(target, temp =>
        {
            File.WriteAllText(Path.Combine(temp, "partial.txt"), "half");
            throw new IOException("disk full");
        }));
        Assert.Equal("kept", File.ReadAllText(Path.Combine(target, "a.txt")));
        Assert.Equal([target], Directory.GetDirectories(dir.Path));
        Assert.False(File.Exists(Path.Combine(target, "partial.txt")));
    }
}
