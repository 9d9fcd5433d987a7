using BenchmarkDotNet.Attributes;

namespace AttnDreamBooth.Benchmarks.Attention;

/// <summary>Self-attention at SD 2.1-base sizes: 64x64 latent level (4096 tokens, 5 heads) and 32x32 (1024 tokens, 10 heads).</summary>
[Config(typeof(AttentionBenchmarkConfig))]
public class SelfAttentionKernelBenchmarks : AttentionKernelBenchmarkBase
{
    [Params("4096tok-5h", "1024tok-10h")]
    public string Shape { get; set; } = "4096tok-5h";

    [GlobalSetup]
    public void GlobalSetup()
    {
        if (Shape == "4096tok-5h") Setup(64, 5, null);
        else Setup(32, 10, null);
    }

    [Benchmark(Baseline = true, Description = "(a) raw SDPA")]
    public void RawSdpa() => RunRawSdpa();

    [Benchmark(Description = "(b) Attention default")]
    public void AttentionDefault() => RunAttentionDefault();

    [Benchmark(Description = "(c) naive softmax")]
    public void Naive() => RunNaive();

    protected override string KeyFor(string method) => Key(nameof(SelfAttentionKernelBenchmarks), method, [Invariant(Pass), Shape]);
}

/// <summary>Cross-attention at the SD 2.1-base 64x64 level: 4096 queries, 77 text keys of width 1024, 5 heads.</summary>
[Config(typeof(AttentionBenchmarkConfig))]
public class CrossAttentionKernelBenchmarks : AttentionKernelBenchmarkBase
{
    [Params("4096x77-5h")]
    public string Shape { get; set; } = "4096x77-5h";

    [GlobalSetup]
    public void GlobalSetup() => Setup(64, 5, 1024);

    [Benchmark(Baseline = true, Description = "(a) raw SDPA")]
    public void RawSdpa() => RunRawSdpa();

    [Benchmark(Description = "(b) Attention default")]
    public void AttentionDefault() => RunAttentionDefault();

    [Benchmark(Description = "(c) naive softmax")]
    public void Naive() => RunNaive();

    [Benchmark(Description = "(d) recording 2 tokens")]
    public void Recording() => RunRecording();

    protected override string KeyFor(string method) => Key(nameof(CrossAttentionKernelBenchmarks), method, [Invariant(Pass), Shape]);
}
