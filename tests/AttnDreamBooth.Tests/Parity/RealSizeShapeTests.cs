using System.Text.Json;
using TorchSharp;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>Modules built from the real SD 1.5 / 2.1 / 2.1-base configs (on the meta device: no memory) expose
/// exactly the parameter names and shapes of the reference classes.</summary>
public sealed class RealSizeShapeTests
{
    public static TheoryData<string> Components()
    {
        var data = new TheoryData<string>();
        foreach (string variant in Directory.EnumerateDirectories(FixtureRoots.RealSize).Select(Path.GetFileName).Order(StringComparer.Ordinal)!)
        {
            foreach (string component in ComponentFactories.All.Keys.Order(StringComparer.Ordinal))
            {
                if (File.Exists(Path.Combine(FixtureRoots.RealSize, variant!, component, "state_dict_shapes.json"))) data.Add($"{variant}/{component}");
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Components))]
    public void NamesAndShapesEqualManifest(string variantAndComponent)
    {
        string folder = Path.Combine(FixtureRoots.RealSize, variantAndComponent);
        string component = Path.GetFileName(variantAndComponent);
        var factory = ComponentFactories.All[component];
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "state_dict_shapes.json")));
        var expected = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.EnumerateArray().Select(d => d.GetInt64()).ToArray());

        using var module = factory.Build(Path.Combine(folder, "config.json"), ComponentFactories.Meta);
        var actual = module.state_dict().Where(p => !factory.IsIgnorableKey(p.Key)).ToDictionary(p => p.Key, p => p.Value.shape);

        Assert.Empty(expected.Keys.Except(actual.Keys).Order());
        Assert.Empty(actual.Keys.Except(expected.Keys).Order());
        var wrong = expected.Where(p => !p.Value.SequenceEqual(actual[p.Key])).Select(p => $"{p.Key}: [{string.Join(",", actual[p.Key])}] vs [{string.Join(",", p.Value)}]");
        Assert.Empty(wrong);
        Assert.Equal(expected.Count, actual.Count);
    }
}
