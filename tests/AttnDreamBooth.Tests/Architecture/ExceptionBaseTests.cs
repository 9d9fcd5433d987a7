using AttnDreamBooth.IO;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;

namespace AttnDreamBooth.Tests.Architecture;

/// <summary>Every exception type the library (and the Shapes world) defines derives from
/// <see cref="AttnDreamBoothException"/>, so one catch handles bad input and bad state; cancellation stays an
/// <see cref="OperationCanceledException"/>.</summary>
public sealed class ExceptionBaseTests
{
    [Fact]
    public void EveryLibraryExceptionDerivesFromTheBase()
    {
        var assemblies = new[] { typeof(SafetensorsFile).Assembly, typeof(ShapesWorld).Assembly };
        var exceptions = assemblies.SelectMany(a => a.GetTypes())
            .Where(t => typeof(Exception).IsAssignableFrom(t) && t != typeof(AttnDreamBoothException))
            .ToArray();
        Assert.True(exceptions.Length >= 10, $"only {exceptions.Length} exception types found");
        var stray = exceptions
            .Where(t => !typeof(AttnDreamBoothException).IsAssignableFrom(t) && t != typeof(TrainingCancelledException))
            .Select(t => t.FullName)
            .ToArray();
        Assert.True(stray.Length == 0, "exceptions outside the base: " + string.Join(", ", stray));
        Assert.True(typeof(OperationCanceledException).IsAssignableFrom(typeof(TrainingCancelledException)));
    }
}
