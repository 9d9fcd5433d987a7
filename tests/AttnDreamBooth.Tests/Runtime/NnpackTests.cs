using AttnDreamBooth.Models.Blocks;
using AttnDreamBooth.Tests.Limits;

namespace AttnDreamBooth.Tests.Runtime;

/// <summary>
/// With one libtorch thread, every small-batch 1×1 convolution made libtorch 2.10 log "Could not initialize NNPACK!" on
/// CPUs where NNPACK cannot start (this project's machines): thousands of lines per generation on standard error. The
/// library turns NNPACK off when it builds a block with such a convolution.
/// </summary>
public sealed class NnpackTests
{
    [Fact]
    public void BuildingABlockWithAOneByOneConvolutionTurnsLibtorchsNnpackSwitchOff()
    {
        if (!OperatingSystem.IsLinux())
        {
            // Only Linux's symbol names are known (Itanium C++ ABI): elsewhere the library leaves libtorch alone.
            Assert.False(Nnpack.TurnOff());
            Assert.Null(Nnpack.UserEnabledNow());
            return;
        }
        using (var block = new ResnetBlock2D(8, 16, tembChannels: null, groups: 4, eps: 1e-6))
        {
            // Whatever ran before in this process, building the block leaves the switch off.
            Assert.False(Nnpack.UserEnabledNow());
        }
        Assert.True(Nnpack.TurnOff());
        Assert.False(Nnpack.UserEnabledNow());
    }

    [Fact]
    public void OneThreadGenerationWritesNoNnpackWarnings()
    {
        // The tiny SD 1.x pipeline has 1×1 shortcuts and convolutional transformer projections, and generation runs them
        // on a batch of 2 (classifier-free guidance): before the switch, 41 warning lines for two sampler steps.
        using var dir = TestPaths.CreateTempDirectory();
        var result = BoundedCli.Run(["generate", "--model", TestPaths.TinySd1, "--prompt", "a dog", "--steps", "2", "--out", dir.File("out")],
            TimeSpan.FromSeconds(90), limitAddressSpace: false, environment: new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" });
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.True(File.Exists(Path.Combine(dir.File("out"), "image-0.png")), result.Output);
        Assert.DoesNotContain("NNPACK", result.Output);
    }
}
