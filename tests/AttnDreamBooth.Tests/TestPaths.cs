using System.Reflection;

namespace AttnDreamBooth.Tests;

/// <summary>Repository paths baked into the test assembly at build time, so tests work from any directory.</summary>
public static class TestPaths
{
    private static string Metadata(string key) =>
        typeof(TestPaths).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == key).Value!;

    public static string RepoRoot => Path.GetFullPath(Metadata("RepoRoot"));
    public static string FixturesRoot => Path.Combine(RepoRoot, "tests", "fixtures");
    public static string TinySd1 => Path.Combine(FixturesRoot, "tiny-sd1", "pipeline");
    public static string TinySd2 => Path.Combine(FixturesRoot, "tiny-sd2", "pipeline");

    /// <summary>A fresh empty directory under the system temp folder; deleted by the returned handle.</summary>
    public static TempDirectory CreateTempDirectory() => new();
}

public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "adb-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
