using System.Reflection;
using AttnDreamBooth.IO;

namespace AttnDreamBooth.Tests.Architecture;

/// <summary>Every public loading factory takes its common optional arguments under the same names and in the same
/// order: path (and what else it requires), device, dtype, variant, the factory's own options, limits, loggerFactory,
/// ct.</summary>
public sealed class FactoryParameterOrderTests
{
    private static readonly string[] Factories = ["FromFolder", "FromPretrained", "FromSingleFile", "Load", "LoadSingleFile"];

    private static readonly string[] CommonOrder = ["device", "dtype", "variant", "limits", "loggerFactory", "ct"];

    // The name each common argument's type must go by, so a caller's named argument binds on every factory.
    private static readonly Dictionary<Type, string> NameOfType = new()
    {
        [typeof(TorchSharp.torch.Device)] = "device", [typeof(TorchSharp.torch.ScalarType?)] = "dtype", [typeof(ResourceLimits)] = "limits",
        [typeof(Microsoft.Extensions.Logging.ILoggerFactory)] = "loggerFactory", [typeof(CancellationToken)] = "ct",
    };

    // ClipTextModel.FromFolder takes variant before dtype; it lives in Models, which changes separately.
    private static readonly HashSet<string> Pending = new(StringComparer.Ordinal) { "AttnDreamBooth.Models.Clip.ClipTextModel.FromFolder" };

    private static IEnumerable<MethodInfo> PublicFactories() =>
        typeof(ModelConfigException).Assembly.GetExportedTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => Factories.Contains(m.Name));

    [Fact]
    public void CommonArgumentsComeInOneOrderUnderOneName()
    {
        var factories = PublicFactories().ToArray();
        Assert.Contains(factories, m => m.DeclaringType == typeof(AttnDreamBooth.StableDiffusion.StableDiffusionPipeline) && m.Name == "FromPretrained");
        var problems = new List<string>();
        foreach (var method in factories)
        {
            string name = $"{method.DeclaringType!.FullName}.{method.Name}";
            var parameters = method.GetParameters().Select(p => p.Name!).ToArray();
            foreach (var p in method.GetParameters())
            {
                if (NameOfType.TryGetValue(p.ParameterType, out var expectedName) && p.Name != expectedName)
                    problems.Add($"{name}: the {p.ParameterType.Name} argument '{p.Name}' should be named '{expectedName}'");
            }
            var common = parameters.Where(CommonOrder.Contains).ToArray();
            var expected = common.OrderBy(p => Array.IndexOf(CommonOrder, p)).ToArray();
            if (!common.SequenceEqual(expected) && !Pending.Contains(name))
                problems.Add($"{name}({string.Join(", ", parameters)}): expected the order {string.Join(", ", expected)}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void ThePendingExceptionIsStillOutOfOrder()
    {
        // When ClipTextModel.FromFolder is reordered, drop it from Pending so the rule covers it.
        var method = PublicFactories().Single(m => $"{m.DeclaringType!.FullName}.{m.Name}" == Pending.Single());
        var common = method.GetParameters().Select(p => p.Name!).Where(CommonOrder.Contains).ToArray();
        Assert.NotEqual(common.OrderBy(p => Array.IndexOf(CommonOrder, p)), common);
    }
}
