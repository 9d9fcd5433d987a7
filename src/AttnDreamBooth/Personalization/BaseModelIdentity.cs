using System.Security.Cryptography;
using System.Text;
using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.StableDiffusion;

namespace AttnDreamBooth.Personalization;

/// <summary>
/// A base model named without any local path: a portable name (the Hugging Face repository of a cache entry, or the
/// folder's or file's name) and the SHA-256 of every weight file, so an export says which weights it needs and anyone
/// can check theirs with <c>sha256sum</c>.
/// </summary>
/// <param name="Name">e.g. <c>stabilityai/stable-diffusion-2-1-base</c> (from a cache entry), <c>sd15</c> (a folder's name)
/// or <c>v1-5-pruned.safetensors</c> (a single file).</param>
/// <param name="Fingerprint"><c>sha256:</c> + the SHA-256 of the lines "<c>&lt;file sha256&gt;  &lt;path&gt;</c>" of
/// <see cref="Files"/>, sorted by path: one value that changes when any weight does.</param>
/// <param name="Files">The weight files, relative to the model folder with <c>/</c> separators.</param>
internal sealed record BaseModelIdentity(string Name, string Fingerprint, IReadOnlyList<BaseModelFile> Files)
{
    private const int BufferBytes = 1 << 22;

    /// <summary>The identity of the weights <paramref name="components"/> were loaded from (reads every weight file once).</summary>
    internal static BaseModelIdentity Of(StableDiffusionComponents components, CancellationToken ct)
    {
        string source = components.ModelSource;
        if (File.Exists(source))
            return Create(Path.GetFileName(source), [(Path.GetFileName(source), source)], ct);
        var folder = components.Folder;
        var files = SingleFileComponents.All
            .SelectMany(c => folder.WeightPaths(c))
            .Select(f => (Path.GetRelativePath(folder.Root, f).Replace('\\', '/'), f))
            .ToArray();
        return Create(PortableName(folder.Root), files, ct);
    }

    /// <summary>The portable name of the model <paramref name="components"/> were loaded from, without reading its weights.</summary>
    internal static string NameOf(StableDiffusionComponents components) =>
        File.Exists(components.ModelSource) ? Path.GetFileName(components.ModelSource) : PortableName(components.Folder.Root);

    /// <summary>The repository of a Hugging Face cache snapshot (<c>…/models--org--name/snapshots/&lt;hash&gt;</c> →
    /// <c>org/name</c>), otherwise the folder's own name.</summary>
    internal static string PortableName(string root)
    {
        string trimmed = root.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        var snapshots = Path.GetDirectoryName(trimmed);
        var entry = snapshots is null ? null : Path.GetDirectoryName(snapshots);
        if (snapshots is not null && entry is not null && Path.GetFileName(snapshots) == "snapshots"
            && Path.GetFileName(entry) is { } cache && cache.StartsWith("models--", StringComparison.Ordinal))
            return cache["models--".Length..].Replace("--", "/", StringComparison.Ordinal);
        return Path.GetFileName(trimmed);
    }

    private static BaseModelIdentity Create(string name, IEnumerable<(string Relative, string Path)> files, CancellationToken ct)
    {
        var hashed = files.OrderBy(f => f.Relative, StringComparer.Ordinal)
            .Select(f =>
            {
                var (hash, bytes) = Sha256(f.Path, ct);
                return new BaseModelFile(f.Relative, bytes, hash);
            })
            .ToArray();
        var lines = string.Concat(hashed.Select(f => $"{f.Sha256}  {f.Path}\n"));
        string fingerprint = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(lines)));
        return new BaseModelIdentity(name, fingerprint, hashed);
    }

    /// <summary>The hash and size of the bytes read (through links, as Hugging Face cache snapshots are).</summary>
    private static (string Hash, long Bytes) Sha256(string path, CancellationToken ct)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferBytes, FileOptions.SequentialScan);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[BufferBytes];
        long total = 0;
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            ct.ThrowIfCancellationRequested();
            hash.AppendData(buffer, 0, read);
            total += read;
        }
        return (Convert.ToHexStringLower(hash.GetHashAndReset()), total);
    }
}

/// <summary>One weight file of a base model.</summary>
/// <param name="Path">Relative to the model folder, <c>/</c>-separated (the file's name for a single-file model).</param>
/// <param name="Bytes">Its size.</param>
/// <param name="Sha256">Its SHA-256, lower-case hex (what <c>sha256sum</c> prints).</param>
internal sealed record BaseModelFile(string Path, long Bytes, string Sha256);
