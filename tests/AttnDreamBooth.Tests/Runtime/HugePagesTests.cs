namespace AttnDreamBooth.Tests.Runtime;

/// <summary>
/// The library turns on libtorch's huge-page allocation when it loads (a large speed-up of convolutions with large
/// weights), but never against a choice the process already made, and only on Linux.
/// </summary>
public sealed class HugePagesTests
{
    [Fact]
    public void OnLinuxWithoutAValueTheVariableIsSetToOne()
    {
        var set = new Dictionary<string, string>();
        Assert.True(HugePages.Apply(isLinux: true, _ => null, (name, value) => set[name] = value));
        Assert.Equal("1", Assert.Single(set, p => p.Key == "THP_MEM_ALLOC_ENABLE").Value);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1")]
    [InlineData("")]
    public void AValueTheProcessAlreadyHasIsKept(string existing)
    {
        bool called = false;
        Assert.False(HugePages.Apply(isLinux: true, name => name == HugePages.Variable ? existing : null, (_, _) => called = true));
        Assert.False(called);
    }

    [Fact]
    public void NothingChangesOutsideLinux()
    {
        bool called = false;
        Assert.False(HugePages.Apply(isLinux: false, _ => null, (_, _) => called = true));
        Assert.False(called);
    }

    [Fact]
    public void InThisProcessLibtorchSeesAValueAndDotNetSeesTheSame()
    {
        // The module initializer ran when this assembly first touched the library: unless the test run chose a value,
        // it is "1". libtorch reads the native environment, which is not .NET's copy: both must agree.
        string? native = HugePages.NativeValue(HugePages.Variable);
        if (OperatingSystem.IsLinux()) Assert.NotNull(native);
        Assert.Equal(Environment.GetEnvironmentVariable(HugePages.Variable), native);
    }
}
