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
            if (!common.SequenceEqual(expected))
                problems.Add($"{name}({string.Join(", ", parameters)}): expected the order {string.Join(", ", expected)}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [Fact]
    public void TheModelFactoriesTakeTheSameArguments()
    {
        // The text encoder, the U-Net and the VAE load alike, so one call shape (named or positional) fits all three.
        string[] Shape(Type model) =>
            model.GetMethod("FromFolder", BindingFlags.Public | BindingFlags.Static)!.GetParameters().Skip(1).Select(p => $"{p.ParameterType} {p.Name}").ToArray();
        var unet = Shape(typeof(AttnDreamBooth.Models.UNet.UNet2DConditionModel));
        Assert.Equal(["device", "dtype", "variant"], unet.Take(3).Select(p => p.Split(' ')[1]));
        Assert.Equal(unet, Shape(typeof(AttnDreamBooth.Models.Clip.ClipTextModel)));
        Assert.Equal(unet, Shape(typeof(AttnDreamBooth.Models.Vae.AutoencoderKL)));
    }
}
