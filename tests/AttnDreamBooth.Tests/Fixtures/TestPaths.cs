using System.Reflection;

namespace AttnDreamBooth.Tests.Fixtures;

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

    /// <summary>Copies a folder and everything under it (e.g. a fixture model to edit one of its files).</summary>
    public static void CopyDirectory(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        foreach (string dir in Directory.GetDirectories(source)) CopyDirectory(dir, Path.Combine(target, Path.GetFileName(dir)));
    }
}
