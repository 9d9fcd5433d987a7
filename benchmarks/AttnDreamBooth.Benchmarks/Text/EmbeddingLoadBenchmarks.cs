using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Text;
using BenchmarkDotNet.Attributes;
using TorchSharp;

namespace AttnDreamBooth.Benchmarks.Text;

/// <summary>
/// <see cref="ConceptEmbedding.Load(string, ClipTokenizer, ClipTextModel, string?, LearnedEmbeddingsReadOptions)"/> of a
/// file holding one entry of <see cref="Rows"/> rows (tokens <c>&lt;many&gt;</c>, <c>&lt;many&gt;_1</c>, …, all new), into
/// the tiny SD 1.x tokenizer and text encoder. The time should grow linearly with the rows (a per-row vocabulary search grows worse
/// than quadratically: 1k/2k/4k/8k rows 0.28/0.65/2.3/8.9 s). Each invocation starts from a fresh tokenizer, made
/// outside the measurement.
/// </summary>
public class EmbeddingLoadBenchmarks
{
    private string _folder = null!;
    private string _file = null!;
    private ClipTextModel _model = null!;
    private ClipTokenizer _tokenizer = null!;
    private LearnedEmbeddingsReadOptions _options = null!;

    /// <summary>Rows in the file.</summary>
    [Params(1_000, 2_000, 4_000, 8_000, 20_000)]
    public int Rows { get; set; }

    [GlobalSetup]
    public void GlobalSetup()
    {
        string pipeline = Path.Combine(RepoRoot(), "tests", "fixtures", "tiny-sd1", "pipeline");
        _model = ClipTextModel.FromFolder(Path.Combine(pipeline, "text_encoder"));
        _folder = Path.Combine(Path.GetTempPath(), "adb-bench-embeddings-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
        _file = Path.Combine(_folder, "many.safetensors");
        using var rows = torch.randn(Rows, _model.HiddenSize, generator: new torch.Generator(1));
        SafetensorsWriter.Write(_file, new Dictionary<string, torch.Tensor> { ["<many>"] = rows });
        _options = new LearnedEmbeddingsReadOptions { MaxRows = Rows };
        _tokenizerFolder = Path.Combine(pipeline, "tokenizer");
    }

    private string _tokenizerFolder = null!;

    [IterationSetup]
    public void IterationSetup() => _tokenizer = ClipTokenizer.FromFolder(_tokenizerFolder);

    /// <summary>Validate the file, add every token, build the module.</summary>
    [Benchmark]
    public int Load()
    {
        using var embedding = ConceptEmbedding.Load(_file, _tokenizer, _model, null, _options);
        return embedding.TokenIds.Count;
    }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        _model.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AttnDreamBooth.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException("Run the benchmarks from inside the repository (AttnDreamBooth.sln not found above " + AppContext.BaseDirectory + ").");
    }
}
