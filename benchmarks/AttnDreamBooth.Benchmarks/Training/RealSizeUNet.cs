using System.Diagnostics;
using System.Globalization;
using AttnDreamBooth.Models.UNet;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>What the untimed profiling commands share: the real-size SD 2.1-base U-Net with random weights and a
/// stage-3-like step (every parameter trained, batch 1 unless a command asks for more, 77 text tokens, MSE against a
/// random target).</summary>
internal sealed class RealSizeUNet : IDisposable
{
    public const int TextTokens = 77;

    private RealSizeUNet(UNet2DConditionModel unet, int latent, int batch)
    {
        Model = unet;
        Latent = latent;
        var g = new Generator(1);
        Latents = randn([batch, 4, latent, latent], generator: g);
        Target = randn([batch, 4, latent, latent], generator: g);
        Timestep = tensor(500L);
        Text = randn([batch, TextTokens, unet.Config.CrossAttentionDim[0]], generator: g);
    }

    public UNet2DConditionModel Model { get; }

    public int Latent { get; }

    public Tensor Latents { get; }

    public Tensor Target { get; }

    public Tensor Timestep { get; }

    public Tensor Text { get; }

    /// <summary>The U-Net config the commands build: SD 2.1-base's, or <c>ATTNDREAMBOOTH_BENCH_UNET_CONFIG</c> (another
    /// model's, or a tiny one to smoke-test a command).</summary>
    public static string ConfigPath => Environment.GetEnvironmentVariable("ATTNDREAMBOOTH_BENCH_UNET_CONFIG")
        ?? Path.Combine(RepoRoot(), "tests", "fixtures", "real-size", "stable-diffusion-2-1-base", "unet", "config.json");

    /// <summary>Builds the model of <see cref="ConfigPath"/> (seed 0) in training mode with every parameter requiring a
    /// gradient, as in stage 3, with inputs of <paramref name="batch"/> images.</summary>
    public static RealSizeUNet Create(int latent, int batch = 1)
    {
        manual_seed(0);
        var unet = new UNet2DConditionModel(UNetConfig.Load(ConfigPath), CPU);
        unet.train();
        foreach (var p in unet.parameters()) p.requires_grad = true;
        return new RealSizeUNet(unet, latent, batch);
    }

    /// <summary>One forward (with the MSE loss) and one backward; gradients accumulate into the kept (zeroed) buffers as
    /// in training. Returns the two wall-clock times in milliseconds.</summary>
    public (double Forward, double Backward) Step(Tensor? sample = null)
    {
        foreach (var p in Model.parameters()) p.grad?.zero_();
        using var scope = NewDisposeScope();
        var watch = Stopwatch.StartNew();
        var loss = nn.functional.mse_loss(Model.call(sample ?? Latents, Timestep, Text), Target);
        double forward = watch.Elapsed.TotalMilliseconds;
        watch.Restart();
        loss.backward();
        return (forward, watch.Elapsed.TotalMilliseconds);
    }

    public static string LoadAverage() =>
        OperatingSystem.IsLinux() ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    /// <summary>libtorch's huge-page switch as the native side sees it (the library sets it to 1 when it loads, unless
    /// the process was started with a value).</summary>
    public static string HugePagesSetting() =>
        $"{HugePages.Variable}={HugePages.NativeValue(HugePages.Variable) ?? "unset"}";

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted.Length == 0 ? double.NaN
            : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static string Ms(double ms) => ms.ToString("F0", CultureInfo.InvariantCulture);

    public static string Percent(double part, double whole) => (100 * part / whole).ToString("F1", CultureInfo.InvariantCulture) + " %";

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AttnDreamBooth.sln"))) return dir.FullName;
        }
        throw new DirectoryNotFoundException("Run the benchmarks from inside the repository (AttnDreamBooth.sln not found above " + AppContext.BaseDirectory + ").");
    }

    public void Dispose()
    {
        Latents.Dispose();
        Target.Dispose();
        Timestep.Dispose();
        Text.Dispose();
        Model.Dispose();
    }
}
