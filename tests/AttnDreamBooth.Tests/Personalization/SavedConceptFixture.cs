using AttnDreamBooth.IO;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>One concept trained briefly on the tiny SD 1.x model (stages 1 and 2, so its U-Net differs from the base
/// model's) and saved once; tests copy the folder and break the copy.</summary>
public sealed class SavedConceptFixture : IDisposable
{
    private readonly TempDirectory _dir = TestPaths.CreateTempDirectory();

    public SavedConceptFixture()
    {
        using var pipeline = TinyPipeline.Build(TinyPipeline.Plan(1, 1, 0), TinyPipeline.Options());
        var model = pipeline.TrainAsync(TinyPipeline.Dog()).GetAwaiter().GetResult();
        model.SaveAsync(Folder).GetAwaiter().GetResult();
    }

    public string Folder => _dir.File("concept");

    /// <summary>A fresh copy of the saved concept under <paramref name="temp"/>.</summary>
    public string CopyTo(TempDirectory temp, string name = "concept")
    {
        string target = temp.File(name);
        TestPaths.CopyDirectory(Folder, target);
        return target;
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>Rewrites a safetensors file after <paramref name="edit"/> changed its tensors.</summary>
    public static void Rewrite(string path, Action<Dictionary<string, torch.Tensor>> edit)
    {
        Dictionary<string, torch.Tensor> tensors;
        using (var file = SafetensorsFile.Open(path)) tensors = file.ReadAll();
        edit(tensors);
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        foreach (var t in tensors.Values) t.Dispose();
    }
}
