using AttnDreamBooth.IO;

namespace AttnDreamBooth.Text;

/// <summary>
/// Opens <c>vocab.json</c> and <c>merges.txt</c> under the same rules as every other model file: only a regular file
/// (a FIFO would block the read forever, a link to <c>/dev/zero</c> never ends, a directory is no file) and no larger
/// than <see cref="ResourceLimits.MaxTokenizerFileBytes"/>, checked on the opened handle before anything is read.
/// </summary>
internal static class TokenizerFiles
{
    /// <summary>Opens a tokenizer file for reading.</summary>
    /// <exception cref="ModelConfigException">The file is missing, not a regular file, or too large.</exception>
    public static FileStream OpenRead(string path)
    {
        string name = Path.GetFileName(path);
        string full, resolved;
        string? type;
        try
        {
            (full, resolved, type) = RegularFile.Inspect(path);
        }
        catch (FileNotFoundException ex)
        {
            throw new ModelConfigException(path, null, $"the tokenizer folder has no {name}", ex);
        }
        if (type is null) throw new ModelConfigException(path, null, $"the tokenizer folder has no {name}");
        if (type != "regular file")
            throw new ModelConfigException(path, null, $"is {(resolved == full ? "" : $"a link to '{resolved}', ")}a {type}, not a regular file; it was not opened");
        var stream = File.OpenRead(path);
        long max = ResourceLimits.Current.MaxTokenizerFileBytes;
        if (stream.Length > max)
        {
            long length = stream.Length;
            stream.Dispose();
            throw new ModelConfigException(path, null, $"the file has {length:N0} bytes, which {ResourceLimits.Exceeds(nameof(ResourceLimits.MaxTokenizerFileBytes), max)}");
        }
        return stream;
    }
}
