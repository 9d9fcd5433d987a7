using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>What decides a cell's results, as one hash: a stored cell is reused only when it matches.</summary>
internal static class ExperimentFingerprint
{
    /// <summary>SHA-256 over every file of the model folder (relative path and content), so replacing the model's weights
    /// in place invalidates the cells trained on the old ones.</summary>
    public static string OfModel(string folder, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string file in Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            ct.ThrowIfCancellationRequested();
            hash.AppendData(Encoding.UTF8.GetBytes(Path.GetRelativePath(folder, file).Replace('\\', '/') + "\n"));
            using var stream = File.OpenRead(file);
            hash.AppendData(SHA256.HashData(stream));
        }
        return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public static string OfCell(string model, PersonalizationExperimentOptions options, ConceptSpec concept, PersonalizationMethod method, StagePlan plan,
        IReadOnlyList<int> prompts)
    {
        var g = options.Generation;
        var description = new
        {
            format = 1,
            model,
            world = options.World.Name,
            concept = JsonSerializer.Serialize(concept),
            method = method.Name(),
            plan = JsonSerializer.Serialize(plan),
            seed = options.TrainingSeed,
            prompts = prompts.Select(i => $"{i}:{ConceptPrompts.Text(options.Prompts[i])}").ToArray(),
            seeds = options.Seeds,
            stageMetrics = options.StageMetrics,
            eightBitStates = options.EightBitOptimizerStates,
            generation = new { g.Steps, g.GuidanceScale, g.Sampler, g.Eta, g.NegativePrompt, g.Width, g.Height, g.HeatmapResolution },
        };
        return Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(description)));
    }
}
