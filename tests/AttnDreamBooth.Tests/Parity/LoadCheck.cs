using AttnDreamBooth.IO;
using TorchSharp;
using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/load": the pipeline folder opens through the public loader, every component config parses, every
/// weight file validates, and for each component with a module the weights' names and shapes equal the module's
/// exactly and load strictly.
/// </summary>
public sealed class LoadCheck : IParityCheck
{
    public string Name => "load";
    public IReadOnlyCollection<string> Components => [];
    public bool AppliesTo(FixtureCase fixture) => fixture.Kind == "sd_pipeline" && Directory.Exists(fixture.PipelineFolder);
    public IEnumerable<string> Claims(FixtureCase fixture) => [];

    public void Run(ParityContext context)
    {
        var folder = DiffusersFolder.Open(context.Case.PipelineFolder);
        foreach (var component in folder.Index.Components.Keys.Order(StringComparer.Ordinal))
        {
            string componentFolder = folder.ComponentPath(component);
            if (component != "tokenizer") ConfigReader.Load(folder.ConfigPath(component));
            if (component is "tokenizer" or "scheduler") continue;
            using var source = StateDictSource.OpenComponent(componentFolder);
            if (!source.Names.Any()) throw new XunitException($"{context.Case.Name}: {component} weights are empty");
            if (!ComponentFactories.All.TryGetValue(component, out var factory)) continue;

            using var meta = factory.Build(folder.ConfigPath(component), ComponentFactories.Meta);
            var expected = meta.state_dict().Where(p => !factory.IsIgnorableKey(p.Key)).ToDictionary(p => p.Key, p => p.Value.shape);
            var stored = source.Names.Where(n => !factory.IsIgnorableKey(n)).ToDictionary(n => n, n => source.Entry(n).Shape);
            var problems = expected.Keys.Except(stored.Keys).Select(k => $"missing in file: {k}")
                .Concat(stored.Keys.Except(expected.Keys).Select(k => $"unexpected in file: {k}"))
                .Concat(expected.Keys.Intersect(stored.Keys).Where(k => !expected[k].SequenceEqual(stored[k]))
                    .Select(k => $"shape of {k}: module [{string.Join(",", expected[k])}], file [{string.Join(",", stored[k])}]"))
                .ToArray();
            if (problems.Length > 0)
                throw new XunitException($"{context.Case.Name}/{component}: {problems.Length} differences:\n  {string.Join("\n  ", problems.Take(20))}");

            using var module = factory.Build(folder.ConfigPath(component), torch.CPU);
            var report = StateDictLoader.Load(module, source, new StateDictLoadOptions { OptionalModuleKey = factory.IsIgnorableKey, KeyMap = k => factory.IsIgnorableKey(k) ? null : k });
            Assert.True(report.IsExact, report.Describe());
        }
    }
}
