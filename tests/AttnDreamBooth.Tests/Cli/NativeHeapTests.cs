using AttnDreamBooth.Cli;

namespace AttnDreamBooth.Tests.Cli;

public sealed class NativeHeapTests
{
    private static Func<string, string?> Environment(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void TheThresholdIsSetOnLinuxUnlessTheProcessWasGivenOne()
    {
        Assert.True(NativeHeap.ShouldSet(isLinux: true, Environment()));
        Assert.True(NativeHeap.ShouldSet(isLinux: true, Environment(("GLIBC_TUNABLES", "glibc.malloc.arena_max=2"))));
        Assert.False(NativeHeap.ShouldSet(isLinux: false, Environment()));
        Assert.False(NativeHeap.ShouldSet(isLinux: true, Environment(("MALLOC_MMAP_THRESHOLD_", "4194304"))));
        Assert.False(NativeHeap.ShouldSet(isLinux: true,
            Environment(("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536"))));
    }

    [Fact]
    public void GlibcTakesTheThresholdOnThisMachine()
    {
        // Sets the allocator option of the test process too; that changes where libtorch's blocks come from, not values.
        bool expected = OperatingSystem.IsLinux() && NativeHeap.ShouldSet(true, System.Environment.GetEnvironmentVariable);
        Assert.Equal(expected, NativeHeap.ReturnLargeBlocksToTheSystem());
    }
}
