using System.Reflection;
using TorchSharp;
using Xunit.Sdk;

[assembly: AttnDreamBooth.Tests.Runtime.TensorRootPerTestThread]

namespace AttnDreamBooth.Tests.Runtime;

/// <summary>
/// Gives every thread that starts a test a dispose scope at the bottom of its stack, so test code's temporary tensors
/// (<c>a.sub(b).abs().max()</c> outside any scope) stay reachable until libtorch is done with them: the garbage
/// collection that other test classes start in parallel could otherwise finalize one under a native call (the SIGSEGV
/// the library's own threads are guarded against by <see cref="TensorRoots"/>). The scope never disposes anything: when
/// the next test starts on the thread, what the previous tests left in it goes back to the garbage collector, as
/// without it. Nothing runs on the thread at that moment, so no native call can be using one of those tensors.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class TensorRootPerTestThreadAttribute : BeforeAfterTestAttribute
{
    [ThreadStatic] private static DisposeScope? _root;

    public override void Before(MethodInfo methodUnderTest)
    {
        if (_root is null)
        {
            _root = torch.NewDisposeScope();
            return;
        }
        _root.Detach(_root.DisposablesView.ToArray());
    }
}
