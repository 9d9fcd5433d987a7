using AttnDreamBooth.Imaging;
using AttnDreamBooth.IO;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// What to personalize: a few photos of one subject, the identifier token [V] that will stand for it, its
/// super-category word (e.g. "dog") and the training prompt template. The template may use exactly two
/// placeholders, <c>{token}</c> and <c>{category}</c>, each exactly once: the attention regularization compares
/// the [V] token with the category word's first sub-token.
/// </summary>
public sealed class Concept
{
    /// <summary>The official identifier token (object token "new_concept" + "_v0"), added to the tokenizer as a new token.</summary>
    public const string DefaultToken = "new_concept_v0";

    /// <summary>The official training prompt.</summary>
    public const string DefaultPromptTemplate = "a photo of a {token} {category}";

    /// <summary>File extensions read from a folder as images (case-insensitive).</summary>
    public static IReadOnlySet<string> ImageExtensions { get; } =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp" };

    // Image files of other formats are picked up too, so validation reports them instead of silently skipping them.
    private static readonly HashSet<string> OtherImageExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".gif", ".bmp", ".dib", ".tif", ".tiff", ".heic", ".heif", ".avif", ".ico", ".jxl", ".jp2", ".psd", ".svg",
        ".dng", ".raw", ".cr2", ".nef", ".arw", ".tga", ".pbm", ".pgm", ".ppm", ".wbmp",
    };

    /// <summary>Creates a concept.</summary>
    /// <exception cref="ArgumentException">No images; an empty or invalid token or category; an invalid template.</exception>
    internal Concept(IEnumerable<ImageSource> images, string category, string token = DefaultToken, string promptTemplate = DefaultPromptTemplate)
    {
        ArgumentNullException.ThrowIfNull(images);
        var list = images.ToArray();
        if (list.Length == 0) throw new ArgumentException("A concept needs at least one image.", nameof(images));
        if (list.Any(i => i is null)) throw new ArgumentException("The image list contains null.", nameof(images));
        Images = list;
        Category = ValidateCategory(category);
        Token = ValidateToken(token);
        PromptTemplate = ValidatePromptTemplate(promptTemplate);
    }

    /// <summary>The images, in a fixed order (a folder's are sorted by file name).</summary>
    internal IReadOnlyList<ImageSource> Images { get; }

    /// <summary>The identifier token [V].</summary>
    public string Token { get; }

    /// <summary>The super-category word(s), e.g. "dog" or "stuffed animal".</summary>
    public string Category { get; }

    /// <summary>The training prompt template (placeholders <c>{token}</c> and <c>{category}</c>).</summary>
    public string PromptTemplate { get; }

    /// <summary>The training prompt, e.g. "a photo of a new_concept_v0 dog".</summary>
    public string TrainingPrompt => PromptTemplate.Replace("{token}", Token, StringComparison.Ordinal).Replace("{category}", Category, StringComparison.Ordinal);

    /// <summary>
    /// Every JPEG, PNG and WebP file directly in <paramref name="folder"/> (sorted by name, ordinal). Files with other
    /// image extensions (GIF, BMP, TIFF, HEIC, …) are included so that validation rejects them by name; other files
    /// (e.g. LICENSE.md, .txt) and hidden files are ignored.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ArgumentException">The folder holds no image file.</exception>
    public static Concept FromFolder(string folder, string category, string token = DefaultToken, string promptTemplate = DefaultPromptTemplate)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        string full = Path.GetFullPath(folder);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"The concept image folder '{full}' does not exist.");
        var files = Directory.EnumerateFiles(full)
            .Where(f => !Path.GetFileName(f).StartsWith('.'))
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f)) || OtherImageExtensions.Contains(Path.GetExtension(f)))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .Select(ImageSource.FromFile)
            .ToArray();
        if (files.Length == 0)
            throw new ArgumentException($"The concept image folder '{full}' contains no image files ({string.Join(", ", ImageExtensions.Order(StringComparer.Ordinal))}).", nameof(folder));
        return new Concept(files, category, token, promptTemplate);
    }

    /// <summary>The given image files, in the given order.</summary>
    public static Concept FromFiles(IEnumerable<string> paths, string category, string token = DefaultToken, string promptTemplate = DefaultPromptTemplate)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return new Concept(paths.Select(ImageSource.FromFile), category, token, promptTemplate);
    }

    /// <summary>Images read now from <paramref name="streams"/> (named "stream 0", "stream 1", … in errors; the
    /// streams are not disposed).</summary>
    public static Concept FromStreams(IEnumerable<Stream> streams, string category, string token = DefaultToken, string promptTemplate = DefaultPromptTemplate)
    {
        ArgumentNullException.ThrowIfNull(streams);
        return new Concept(streams.Select((s, i) => ImageSource.FromStream($"stream {i}", s)), category, token, promptTemplate);
    }

    /// <summary>The same concept with another identifier token (e.g. an existing rare token such as "sks").</summary>
    public Concept WithToken(string token) => new(Images, Category, token, PromptTemplate);

    /// <summary>The same concept with another training prompt template.</summary>
    public Concept WithPromptTemplate(string promptTemplate) => new(Images, Category, Token, promptTemplate);

    /// <summary>Checks every image of the concept as training would (headers first, then decoding) and lists what is
    /// wrong with which file, without throwing; an empty list means the images are usable.</summary>
    /// <param name="options">The image settings (default: the training defaults).</param>
    /// <param name="limits">The size limits (default <see cref="ResourceLimits.Default"/>; training uses the pipeline's
    /// <see cref="PersonalizationPipeline.ResourceLimits"/>).</param>
    public IReadOnlyList<ImageProblem> FindProblems(ConceptImageOptions? options = null, ResourceLimits? limits = null) =>
        ConceptImageSet.FindProblems(this, options, limits ?? ResourceLimits.Default);

    /// <summary>
    /// Expands a generation prompt: <c>{}</c> becomes "[V] category" (the official convention, e.g.
    /// "a {} in the snow" → "a new_concept_v0 dog in the snow"), <c>{token}</c> the token and <c>{category}</c> the
    /// category. Any other brace is an error.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt holds another placeholder or a stray brace.</exception>
    public string ExpandPrompt(string prompt) => PromptPlaceholders.Expand(prompt, Token, Category);

    /// <summary>
    /// Checks a training prompt template: <c>{token}</c> and <c>{category}</c> each exactly once, no other braces.
    /// Returns the template.
    /// </summary>
    /// <exception cref="ArgumentException">The template breaks a rule; the message says which.</exception>
    public static string ValidatePromptTemplate(string promptTemplate)
    {
        ArgumentNullException.ThrowIfNull(promptTemplate);
        int tokens = Count(promptTemplate, "{token}"), categories = Count(promptTemplate, "{category}");
        if (tokens != 1)
            throw new ArgumentException($"The prompt template '{promptTemplate}' must contain {{token}} exactly once; found {tokens}.", nameof(promptTemplate));
        if (categories != 1)
            throw new ArgumentException($"The prompt template '{promptTemplate}' must contain {{category}} exactly once (the regularization compares [V] with the category word); found {categories}.", nameof(promptTemplate));
        string rest = promptTemplate.Replace("{token}", "", StringComparison.Ordinal).Replace("{category}", "", StringComparison.Ordinal);
        if (rest.Contains('{') || rest.Contains('}'))
            throw new ArgumentException($"The prompt template '{promptTemplate}' contains a brace outside {{token}} and {{category}}; those are the only placeholders.", nameof(promptTemplate));
        return promptTemplate;
    }

    private static string ValidateToken(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (token.Length == 0 || token.Any(char.IsWhiteSpace) || token.Contains('{') || token.Contains('}'))
            throw new ArgumentException($"The identifier token '{token}' must be one non-empty word without whitespace or braces.", nameof(token));
        return token;
    }

    private static string ValidateCategory(string category)
    {
        ArgumentNullException.ThrowIfNull(category);
        string trimmed = category.Trim();
        if (trimmed.Length == 0)
            throw new ArgumentException("The category word must not be empty (e.g. \"dog\").", nameof(category));
        if (trimmed.Contains('{') || trimmed.Contains('}'))
            throw new ArgumentException($"The category '{category}' must not contain braces.", nameof(category));
        return trimmed;
    }

    private static int Count(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}
