using System.Diagnostics;
using AttnDreamBooth.IO;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Limits;

/// <summary>
/// Tokenizer files are opened under the rules of every other model file: a FIFO, a directory or a link to a device in
/// place of vocab.json, merges.txt or a tokenizer JSON is refused by type (opening a FIFO blocks until a writer appears), and an
/// oversized vocab.json or merges.txt is refused from its size before it is read. Each case is bounded to 30 s.
/// </summary>
public sealed class TokenizerFileLimitTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static string CopyTokenizer(TempDirectory dir)
    {
        string folder = dir.File("tokenizer");
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.EnumerateFiles(Path.Combine(TestPaths.TinySd1, "tokenizer")))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }

    private static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", [path])!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    public static TheoryData<string, string, string> NotRegularFiles() => new()
    {
        { "vocab.json", "fifo", "FIFO" },
        { "merges.txt", "fifo", "FIFO" },
        { "tokenizer_config.json", "fifo", "not a regular file" },
        { "special_tokens_map.json", "fifo", "not a regular file" },
        { "vocab.json", "directory", "directory" },
        { "merges.txt", "directory", "directory" },
        { "tokenizer_config.json", "directory", "directory" },
        { "special_tokens_map.json", "directory", "directory" },
        { "vocab.json", "dev-zero", "character device" },
        { "merges.txt", "dev-zero", "character device" },
    };

    [Theory]
    [MemberData(nameof(NotRegularFiles))]
    public async Task AFileThatIsNotARegularFileIsRefusedByType(string name, string kind, string expected)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string folder = CopyTokenizer(dir);
        string path = Path.Combine(folder, name);
        File.Delete(path);
        switch (kind)
        {
            case "fifo": MakeFifo(path); break;
            case "directory": Directory.CreateDirectory(path); break;
            case "dev-zero": File.CreateSymbolicLink(path, "/dev/zero"); break;
        }
        var error = await Bounded.RunAsync(() => Assert.Throws<ModelConfigException>(() => ClipTokenizer.FromFolder(folder)), Bound, $"{kind} {name}");
        Assert.Equal(path, error.FilePath);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("vocab.json")]
    [InlineData("merges.txt")]
    public async Task AnOversizedFileIsRefusedFromItsSizeBeforeItIsRead(string name)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string folder = CopyTokenizer(dir);
        string path = Path.Combine(folder, name);
        // Sparse: no disk blocks, and all zeros, so reading it would fail as malformed JSON or merges, not on the size.
        using (var stream = new FileStream(path, FileMode.Truncate)) stream.SetLength(ResourceLimits.Default.MaxTokenizerFileBytes + 1);
        var error = await Bounded.RunAsync(() => Assert.Throws<ModelConfigException>(() => ClipTokenizer.FromFolder(folder)), Bound, $"oversized {name}");
        Assert.Equal(path, error.FilePath);
        Assert.Contains("MaxTokenizerFileBytes", error.Message);
        Assert.Contains("67,108,865 bytes", error.Message);
    }

    [Fact]
    public async Task ALinkToAnOversizedFileIsMeasuredAtItsTarget()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string folder = CopyTokenizer(dir);
        string target = dir.File("big-vocab.json");
        using (var stream = new FileStream(target, FileMode.CreateNew)) stream.SetLength(ResourceLimits.Default.MaxTokenizerFileBytes + 1);
        File.Delete(Path.Combine(folder, "vocab.json"));
        File.CreateSymbolicLink(Path.Combine(folder, "vocab.json"), target);
        var error = await Bounded.RunAsync(() => Assert.Throws<ModelConfigException>(() => ClipTokenizer.FromFolder(folder)), Bound, "link to an oversized vocab.json");
        Assert.Contains("MaxTokenizerFileBytes", error.Message);
    }

    [Fact]
    public void AMissingVocabularyIsStillNamedAsMissing()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string folder = CopyTokenizer(dir);
        File.Delete(Path.Combine(folder, "vocab.json"));
        var error = Assert.Throws<ModelConfigException>(() => ClipTokenizer.FromFolder(folder));
        Assert.Contains("the tokenizer folder has no vocab.json", error.Message);
        // And the copied folder itself loads (the cases above fail only because of what was put in place).
        File.Copy(Path.Combine(TestPaths.TinySd1, "tokenizer", "vocab.json"), Path.Combine(folder, "vocab.json"));
        Assert.Equal(49408, ClipTokenizer.FromFolder(folder).VocabularySize);
    }
}
