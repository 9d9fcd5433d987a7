namespace AttnDreamBooth.Cli;

/// <summary>Finds the demo's inputs (the tiny fixture pipeline and the sample photos) in the repository.</summary>
internal static class RepoPaths
{
    public const string TinyPipeline = "tests/fixtures/tiny-sd1/pipeline";
    public const string DogPhotos = "samples/data/dog";

    /// <summary>The repository root: the first ancestor of the working directory or of the executable that holds both.</summary>
    public static string FindRoot()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (Directory.Exists(Path.Combine(dir.FullName, TinyPipeline)) && Directory.Exists(Path.Combine(dir.FullName, DogPhotos))) return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"The demo needs the repository's '{TinyPipeline}' and '{DogPhotos}'; run it from inside a clone of the repository.");
    }
}
