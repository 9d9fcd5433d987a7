namespace AttnDreamBooth.Cli;

/// <summary>Finds the demo's inputs (the shipped Shapes model and concept specs) in the repository.</summary>
internal static class RepoPaths
{
    public const string ShapesModel = "samples/models/shapes-sd";
    public const string Concepts = "samples/concepts";
    public const string DemoConcept = "samples/concepts/harlequin-star.json";

    /// <summary>The repository root: the first ancestor of the working directory or of the executable that holds both.</summary>
    public static string FindRoot()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (Directory.Exists(Path.Combine(dir.FullName, ShapesModel)) && File.Exists(Path.Combine(dir.FullName, DemoConcept))) return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"The demo needs the repository's '{ShapesModel}' and '{DemoConcept}'; run it from inside a clone of the repository.");
    }
}
