using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using AttnDreamBooth.IO;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.StableDiffusion;
using Microsoft.Extensions.Logging;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// Generates the prior-preservation class images, or reuses those of a cache folder whose manifest records the same
/// settings and whose files still hash as recorded. Every file is written atomically and the manifest after the images
/// it lists, so an interrupted run never leaves a manifest that vouches for a missing or partial image.
/// </summary>
internal static partial class ClassImageCache
{
    [GeneratedRegex(@"^class_\d{5}\.png$", RegexOptions.CultureInvariant)]
    private static partial Regex ImageName();

    private static string FileName(int index) => $"class_{index:D5}.png";

    /// <param name="options">Class prompt, count, seed and generation settings.</param>
    /// <param name="category">The concept's category (fills <c>{category}</c>).</param>
    /// <param name="model">The base model's identity (its full path).</param>
    /// <param name="resolution">Side of the square images, the training resolution.</param>
    /// <param name="directory">The cache folder, or null to generate in memory.</param>
    /// <param name="generate">Renders a prompt with the base model.</param>
    /// <param name="progress">Reports after every batch, or once when everything is reused.</param>
    /// <param name="logger">Logs reuse and generation.</param>
    /// <param name="ct">Checked between batches and, through <paramref name="generate"/>, between denoising steps.</param>
    public static ClassImageSet Prepare(PriorPreservationOptions options, string category, string model, int resolution, string? directory,
        Func<string, GenerationOptions, CancellationToken, IReadOnlyList<GeneratedImage>> generate, IProgress<ClassImageProgress>? progress,
        ILogger logger, CancellationToken ct)
    {
        options.Validate();
        string prompt = options.ExpandClassPrompt(category);
        var settings = new ClassImageSettings(prompt, options.NegativePrompt, model, options.NumClassImages, options.Seed, options.SampleBatchSize,
            options.InferenceSteps, options.GuidanceScale, SamplerSelection.Describe(options.ToGenerationOptions(0, 1, resolution)), resolution);
        string? folder = directory is null ? null : Path.GetFullPath(directory);
        var clock = Stopwatch.StartNew();
        var images = new List<RgbImage>();
        var files = new List<ClassImageFile>();

        if (folder is not null)
        {
            OutputFolders.CleanStaleTemporaries(folder);
            var manifest = ClassImageManifest.TryRead(folder);
            if (manifest is not null && manifest.Settings == settings) ReuseValidPrefix(folder, manifest, resolution, images, files);
            if (manifest is { Complete: true } && images.Count == settings.Count)
            {
                PipelineLog.ClassImagesReused(logger, images.Count, prompt, folder);
                progress?.Report(new ClassImageProgress(images.Count, settings.Count, FromCache: true, clock.Elapsed, TimeSpan.Zero));
                return Result(folder, files, images, fromCache: true, generated: 0, prompt);
            }
            // Whole batches only: an image's last bits can depend on the batch it was generated in.
            int keep = images.Count / settings.SampleBatchSize * settings.SampleBatchSize;
            images.RemoveRange(keep, images.Count - keep);
            files.RemoveRange(keep, files.Count - keep);
            long bytes = (long)(settings.Count - keep) * resolution * resolution * 3 + (1 << 20);
            OutputFolders.RequireWritable(folder, bytes, "class images");
            // Before any image is replaced, the manifest vouches only for the images kept.
            new ClassImageManifest(ClassImageManifest.CurrentVersion, settings, Complete: false, files.ToArray()).Write(folder);
        }

        int reused = images.Count, total = settings.Count;
        if (reused > 0) progress?.Report(new ClassImageProgress(reused, total, FromCache: false, clock.Elapsed, null));
        for (int first = reused; first < total; first += settings.SampleBatchSize)
        {
            ct.ThrowIfCancellationRequested();
            int count = Math.Min(settings.SampleBatchSize, total - first);
            var batch = generate(prompt, options.ToGenerationOptions(first, count, resolution), ct);
            if (batch.Count != count) throw new InvalidOperationException($"Class-image generation returned {batch.Count} images instead of {count}.");
            for (int i = 0; i < count; i++)
            {
                var image = batch[i].Image;
                byte[] png = image.EncodePng();
                string name = FileName(first + i);
                if (folder is not null) AtomicFile.Write(Path.Combine(folder, name), s => s.Write(png));
                images.Add(image);
                files.Add(new ClassImageFile(name, Convert.ToHexString(SHA256.HashData(png))));
            }
            if (folder is not null) new ClassImageManifest(ClassImageManifest.CurrentVersion, settings, images.Count == total, files.ToArray()).Write(folder);
            int generatedSoFar = images.Count - reused;
            var elapsed = clock.Elapsed;
            progress?.Report(new ClassImageProgress(images.Count, total, FromCache: false, elapsed,
                TimeSpan.FromTicks(elapsed.Ticks / generatedSoFar * (total - images.Count))));
        }
        if (folder is not null)
        {
            new ClassImageManifest(ClassImageManifest.CurrentVersion, settings, Complete: true, files.ToArray()).Write(folder);
            DeleteUnlisted(folder, files);
        }
        PipelineLog.ClassImagesGenerated(logger, total - reused, prompt, folder ?? "(memory)", clock.Elapsed);
        return Result(folder, files, images, fromCache: false, generated: total - reused, prompt);
    }

    /// <summary>Adds the listed images, in order, up to the first one that is missing, altered or undecodable.</summary>
    private static void ReuseValidPrefix(string folder, ClassImageManifest manifest, int resolution, List<RgbImage> images, List<ClassImageFile> files)
    {
        var decode = ImageDecodeOptions.From(ResourceLimits.Current);
        for (int i = 0; i < manifest.Files.Count && i < manifest.Settings.Count; i++)
        {
            var entry = manifest.Files[i];
            string path = Path.Combine(folder, entry.Name);
            if (entry.Name != FileName(i) || !File.Exists(path)) return;
            try
            {
                byte[] png = ImageSource.FromFile(path).ReadAllBytes(decode.MaxFileBytes);
                if (!string.Equals(Convert.ToHexString(SHA256.HashData(png)), entry.Sha256, StringComparison.OrdinalIgnoreCase)) return;
                var image = ImageDecoder.Load(ImageSource.FromBytes(path, png), decode);
                if (image.Width != resolution || image.Height != resolution) return;
                images.Add(image);
                files.Add(entry);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidImageException)
            {
                return;
            }
        }
    }

    /// <summary>Deletes class-image files of our naming that the final manifest does not list (left by a larger set).</summary>
    private static void DeleteUnlisted(string folder, IReadOnlyList<ClassImageFile> files)
    {
        var listed = files.Select(f => f.Name).ToHashSet(StringComparer.Ordinal);
        foreach (string path in Directory.EnumerateFiles(folder))
        {
            string name = Path.GetFileName(path);
            if (ImageName().IsMatch(name) && !listed.Contains(name)) File.Delete(path);
        }
    }

    private static ClassImageSet Result(string? folder, List<ClassImageFile> files, List<RgbImage> images, bool fromCache, int generated, string prompt) =>
        new(prompt, images.ToArray(), files.Select(f => Convert.FromHexString(f.Sha256)).ToArray(), folder,
            folder is null ? [] : files.Select(f => Path.Combine(folder, f.Name)).ToArray(), fromCache, generated);
}
