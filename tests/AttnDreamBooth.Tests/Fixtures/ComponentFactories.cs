using TorchSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>
/// Builds the module of one pipeline component from its config file, so the load check and the real-size
/// tests can compare module names/shapes with weight files and manifests. Implementations are discovered by
/// reflection (one per component: "unet", "vae", "text_encoder").
/// </summary>
public interface IComponentModuleFactory
{
    /// <summary>The component folder name in a pipeline.</summary>
    string Component { get; }

    /// <summary>Builds the module described by <paramref name="configPath"/> on <paramref name="device"/>
    /// (the real-size tests pass the meta device, so nothing is allocated).</summary>
    torch.nn.Module Build(string configPath, torch.Device device);

    /// <summary>State-dict keys that files may hold although the module does not (e.g. position_ids), or
    /// that the module holds although files may omit them.</summary>
    bool IsIgnorableKey(string key) => false;
}

public static class ComponentFactories
{
    private static readonly Lazy<IReadOnlyDictionary<string, IComponentModuleFactory>> Instances = new(() =>
        typeof(IComponentModuleFactory).Assembly.GetTypes()
            .Where(t => typeof(IComponentModuleFactory).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IComponentModuleFactory)Activator.CreateInstance(t)!)
            .ToDictionary(f => f.Component));

    public static IReadOnlyDictionary<string, IComponentModuleFactory> All => Instances.Value;

    public static readonly torch.Device Meta = new(DeviceType.META);
}
