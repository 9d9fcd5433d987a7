using System.Text.Json;
using System.Text.RegularExpressions;
using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Cli;

/// <summary>A usage error found by the CLI itself: the message names the argument and says what to give instead.</summary>
internal sealed class CliUsageException(string message) : Exception(message);

/// <summary>Checks of the cheap arguments (paths, device, photos, base model) before anything expensive is loaded, each
/// failing with one line that names the argument and the fix.</summary>
internal static partial class CliInput
{
    /// <summary>"cpu", "cuda" or "cuda:N" (any case).</summary>
    public static string Device(string device)
    {
        string d = device.Trim().ToLowerInvariant();
        if (d is "cpu" or "cuda" || DevicePattern().IsMatch(d)) return d;
        throw new CliUsageException($"--device '{device}' is not a device; use cpu, cuda or cuda:N (e.g. cuda:0).");
    }

    [GeneratedRegex("^cuda:[0-9]{1,2}$")]
    private static partial Regex DevicePattern();

    /// <summary>The concept photos: <paramref name="images"/> must be a folder of readable photos.</summary>
    public static Concept Photos(string images, string category, string token)
    {
        string full = PhotoFolder(images);
        var concept = Concept.FromFolder(full, category, token);
        var problems = concept.FindProblems();
        if (problems.Count > 0)
            throw new CliUsageException($"--images: {problems.Count} of the photos in '{full}' cannot be used: {string.Join("; ", problems.Select(p => p.ToString()))}. Remove or replace them.");
        return concept;
    }

    /// <summary>The full path of <c>--images</c>, which must be a folder (not one of the photos).</summary>
    public static string PhotoFolder(string images)
    {
        string full = Path.GetFullPath(images);
        if (File.Exists(full))
            throw new CliUsageException($"--images '{full}' is a file; give the folder that holds the 3–5 photos (put them in one folder and pass that folder).");
        if (!Directory.Exists(full))
            throw new CliUsageException($"--images '{full}' does not exist; give the folder that holds the 3–5 photos of the subject.");
        return full;
    }

    /// <summary>The base model: a diffusers folder, or a single <c>.safetensors</c> file with <paramref name="config"/>
    /// (a diffusers folder of the same family that provides the configs, tokenizer and scheduler).</summary>
    public static PersonalizationPipelineBuilder Model(string model, string? config, Microsoft.Extensions.Logging.ILoggerFactory logging)
    {
        string full = Path.GetFullPath(model);
        if (File.Exists(full))
        {
            if (config is null)
                throw new CliUsageException($"--model '{full}' is a single-file checkpoint; also give --model-config: a diffusers folder of the same family "
                    + "(its configs, tokenizer and scheduler; the weights are not needed), e.g. the stable-diffusion-v1-5 folder for an SD 1.x file.");
            string configFull = Path.GetFullPath(config);
            if (!Directory.Exists(configFull))
                throw new CliUsageException($"--model-config '{configFull}' does not exist; give a diffusers folder of the same family as '{Path.GetFileName(full)}'.");
            return PersonalizationPipeline.FromSingleFile(full, configFull).WithLogger(logging);
        }
        if (!Directory.Exists(full))
            throw new CliUsageException($"--model '{full}' does not exist; give a diffusers model folder (with model_index.json) or a .safetensors single-file checkpoint (with --model-config).");
        if (config is not null)
            throw new CliUsageException("--model-config goes with a single-file --model; a diffusers folder brings its own configs.");
        return PersonalizationPipeline.FromPretrained(full).WithLogger(logging);
    }

    /// <summary>A training run's folder stands for its <c>concept</c> folder.</summary>
    public static string ConceptFolder(string path)
    {
        string full = Path.GetFullPath(path);
        string runConcept = Path.Combine(full, "concept");
        return !File.Exists(Path.Combine(full, PersonalizedModel.MetadataFile)) && File.Exists(Path.Combine(runConcept, PersonalizedModel.MetadataFile)) ? runConcept : full;
    }

    /// <summary>Refuses a concept written by train on a base model whose name differs from <paramref name="model"/>'s, unless forced.</summary>
    public static void RequireSameBase(string conceptFolder, string model, bool force)
    {
        string metadata = Path.Combine(conceptFolder, PersonalizedModel.MetadataFile);
        if (force || !File.Exists(metadata)) return;
        string? recorded;
        try
        {
            recorded = JsonFiles.Deserialize<PersonalizedModelMetadata>(File.ReadAllText(metadata))?.BaseModelName;
        }
        catch (JsonException)
        {
            return; // The library's load names the broken file.
        }
        string full = Path.GetFullPath(model);
        string given = File.Exists(full) ? Path.GetFileName(full) : BaseModelIdentity.PortableName(full);
        if (recorded is not null && recorded != given)
            throw new CliUsageException($"the concept '{conceptFolder}' was trained on the base model '{recorded}', but --model is '{given}'; leave out --model to use the "
                + "recorded base model, or pass --force to load the concept onto this one anyway.");
    }
}
