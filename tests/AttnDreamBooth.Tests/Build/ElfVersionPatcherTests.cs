using AttnDreamBooth.Build;

namespace AttnDreamBooth.Tests.Build;

public sealed class ElfVersionPatcherTests
{
    private const string Version = "GLIBCXX_3.4.32";

    /// <summary>The pristine library from the NuGet cache (the test output copy is already patched).</summary>
    private static string PristineLibrary()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string path = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"TorchSharp's native library is not in the package cache at '{path}'");
        return path;
    }

    [Fact]
    public void PatchSetsOnlyTheWeakFlagOfThatEntry()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string copy = dir.File("libLibTorchSharp.so");
        File.Copy(PristineLibrary(), copy);
        byte[] before = File.ReadAllBytes(copy);
        long flagsOffset = ElfVersionPatcher.FindVernauxFlagsOffset(before, Version);
        Assert.True(flagsOffset > 0);
        Assert.Equal(0, before[flagsOffset] & ElfVersionPatcher.VerFlagWeak);

        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.MakeVersionWeak(copy, Version));

        byte[] after = File.ReadAllBytes(copy);
        Assert.Equal(before.Length, after.Length);
        var differing = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToArray();
        Assert.Equal([(int)flagsOffset], differing);
        Assert.Equal(before[flagsOffset] | ElfVersionPatcher.VerFlagWeak, after[flagsOffset]);
    }

    [Fact]
    public void PatchIsIdempotent()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string copy = dir.File("libLibTorchSharp.so");
        File.Copy(PristineLibrary(), copy);
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.MakeVersionWeak(copy, Version));
        byte[] once = File.ReadAllBytes(copy);
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.MakeVersionWeak(copy, Version));
        Assert.Equal(once, File.ReadAllBytes(copy));
    }

    [Fact]
    public void SourceOfAHardLinkedCopyIsNeverModified()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string source = dir.File("source.so");
        string linked = dir.File("linked.so");
        File.Copy(PristineLibrary(), source);
        byte[] original = File.ReadAllBytes(source);
        Assert.Equal(0, Link(source, linked));
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.MakeVersionWeak(linked, Version));
        Assert.Equal(original, File.ReadAllBytes(source));
    }

    [Fact]
    public void OtherFilesAreLeftUntouched()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string text = dir.File("notelf.so");
        File.WriteAllText(text, "definitely not an ELF file, just some text to be left alone");
        byte[] before = File.ReadAllBytes(text);
        Assert.Equal(ElfPatchOutcome.NotApplicable, ElfVersionPatcher.MakeVersionWeak(text, Version));
        Assert.Equal(before, File.ReadAllBytes(text));

        string lib = dir.File("lib.so");
        File.Copy(PristineLibrary(), lib);
        byte[] libBefore = File.ReadAllBytes(lib);
        Assert.Equal(ElfPatchOutcome.RequirementNotFound, ElfVersionPatcher.MakeVersionWeak(lib, "GLIBCXX_9.9.99"));
        Assert.Equal(libBefore, File.ReadAllBytes(lib));
    }

    [Fact]
    public void TruncatedElfIsRejectedWithoutCrash()
    {
        byte[] bytes = File.ReadAllBytes(PristineLibrary());
        var truncated = bytes.Take(4096).ToArray();
        Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.FindVernauxFlagsOffset(truncated, Version));
        var wrongClass = bytes.Take(64).ToArray();
        wrongClass[4] = 1;
        Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.FindVernauxFlagsOffset(wrongClass, Version));
    }

    [Fact]
    public void BuildOutputCopyWasPatchedByThePackageTargets()
    {
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        byte[] bytes = File.ReadAllBytes(output);
        long offset = ElfVersionPatcher.FindVernauxFlagsOffset(bytes, Version);
        Assert.NotEqual(0, bytes[offset] & ElfVersionPatcher.VerFlagWeak);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int Link(string oldPath, string newPath);
}
