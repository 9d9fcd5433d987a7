using System.Text.Json;
using System.Text.Json.Serialization;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Personalization;

/// <summary>Everything that determines a set of class images; two sets with equal settings are bit-identical.</summary>
internal sealed record ClassImageSettings(string Prompt, string NegativePrompt, string Model, int Count, long Seed, int SampleBatchSize,
    int InferenceSteps, double GuidanceScale, string Sampler, int Resolution);

/// <summary>One cached class image: its file name and the SHA-256 of its bytes (hex).</summary>
internal sealed record ClassImageFile(string Name, string Sha256);

/// <summary>
/// <c>class_images.json</c> in a class-image folder: the settings the images were generated with, the files written so
/// far (always whole generation batches, so a run interrupted with the same settings continues where it stopped) and
/// whether the set is complete.
/// </summary>
internal sealed record ClassImageManifest(int Version, ClassImageSettings Settings, bool Complete, IReadOnlyList<ClassImageFile> Files)
{
    public const string FileName = "class_images.json";

    public const int CurrentVersion = 1;

    /// <summary>The manifest in <paramref name="folder"/>, or null when it is missing, unreadable or of another version
    /// (the images are then generated again).</summary>
    public static ClassImageManifest? TryRead(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            RegularFile.Require(path);
            if (new FileInfo(path).Length > 16 << 20) return null;
            var manifest = JsonFiles.Deserialize<ClassImageManifest>(File.ReadAllText(path));
            return manifest is { Version: CurrentVersion, Settings: not null, Files: not null } && manifest.Files.All(f => f is { Name: not null, Sha256: not null })
                ? manifest
                : null;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Writes the manifest atomically into <paramref name="folder"/>.</summary>
    public void Write(string folder) => AtomicFile.WriteAllText(Path.Combine(folder, FileName), JsonFiles.Serialize(this));
}
