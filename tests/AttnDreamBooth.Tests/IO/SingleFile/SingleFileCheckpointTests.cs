using AttnDreamBooth.IO;
using AttnDreamBooth.IO.SingleFile;
using AttnDreamBooth.Tests.Parity;
using Microsoft.Extensions.Logging;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.IO.SingleFile;

public sealed class SingleFileCheckpointTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var fixture in FixtureRoots.Cases.Values.Where(new SingleFileCheck().AppliesTo)) data.Add(fixture.Name);
        return data;
    }

    private static FixtureCase Case(string name) => FixtureRoots.Get(name);

    private static Dictionary<string, torch.Tensor> ReadFile(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.ReadAll();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FolderToSingleFileToFolderIsIdentical(string caseName)
    {
        var fixture = Case(caseName);
        string pipeline = fixture.PipelineFolder;
        using var checkpointOriginal = SingleFileCheckpoint.Open(SingleFileCheck.FileOf(fixture), SingleFileArchitecture.FromFolder(pipeline));
        var family = checkpointOriginal.Family;
        using var temp = TestPaths.CreateTempDirectory();
        string single = temp.File("exported.safetensors");

        SingleFileExporter.ExportFolder(pipeline, single, family);

        // The export equals the fixture's single file except for what a diffusers pipeline does not hold; SD 2.x files
        // also get an identity text_projection of the reference's shape, which loaders read the text width from.
        using (var exported = SafetensorsFile.Open(single))
        using (var reference = SafetensorsFile.Open(SingleFileCheck.FileOf(fixture)))
        {
            var expectedNames = reference.Names.Where(n => checkpointOriginal.KeyMap.Resolve(n).Kind == SingleFileKeyKind.Mapped).ToArray();
            if (family == StableDiffusionFamily.Sd2)
            {
                Assert.Equal(expectedNames.Append(SingleFileExporter.TextProjectionKey).Order(StringComparer.Ordinal), exported.Names.Order(StringComparer.Ordinal));
                Assert.Equal(reference.Entries[SingleFileExporter.TextProjectionKey].Shape, exported.Entries[SingleFileExporter.TextProjectionKey].Shape);
                using var projection = exported.ReadTensor(SingleFileExporter.TextProjectionKey);
                Assert.True(projection.eq(torch.eye(projection.shape[0])).all().item<bool>());
            }
            else Assert.Equal(expectedNames, exported.Names);
            foreach (string name in expectedNames)
            {
                using var a = reference.ReadTensor(name);
                using var b = exported.ReadTensor(name);
                Assert.True(a.bytes.SequenceEqual(b.bytes), name);
                Assert.Equal(a.shape, b.shape);
            }
            Assert.Equal("pt", exported.Metadata["format"]);
        }

        string folder = Path.Combine(temp.Path, "roundtrip");
        using (var checkpoint = SingleFileCheckpoint.Open(single, SingleFileArchitecture.FromFolder(pipeline)))
        {
            Assert.Equal(family, checkpoint.Family);
            checkpoint.WriteDiffusersFolder(pipeline, folder);
        }
        foreach (string component in SingleFileComponents.All)
        {
            using var expected = StateDictSource.OpenComponent(Path.Combine(pipeline, component));
            using var actual = StateDictSource.OpenComponent(Path.Combine(folder, component));
            Assert.Empty(StateDictComparison.Differences(expected, actual));
            Assert.Equal(File.ReadAllBytes(Path.Combine(pipeline, component, "config.json")), File.ReadAllBytes(Path.Combine(folder, component, "config.json")));
        }
        Assert.True(File.Exists(Path.Combine(folder, "model_index.json")));
        Assert.True(File.Exists(Path.Combine(folder, "tokenizer", "vocab.json")));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ComponentViewsLoadIntoModulesByName(string caseName)
    {
        // StateDictLoader accepts the view: a module holding the pipeline's names gets the pipeline's values.
        var fixture = Case(caseName);
        using var checkpoint = SingleFileCheckpoint.Open(SingleFileCheck.FileOf(fixture), SingleFileArchitecture.FromFolder(fixture.PipelineFolder));
        var source = checkpoint.OpenComponent(SingleFileComponents.Vae);
        using var module = new ParameterBag(source);
        var report = StateDictLoader.Load(module, source, new StateDictLoadOptions { KeyMap = k => k.Replace('.', '_') });
        Assert.True(report.IsExact, report.Describe());
        using var expected = StateDictSource.OpenComponent(Path.Combine(fixture.PipelineFolder, SingleFileComponents.Vae));
        var loaded = module.state_dict();
        foreach (var (moduleKey, name) in module.Map)
        {
            using var e = expected.Read(name);
            Assert.True(e.bytes.SequenceEqual(loaded[moduleKey].contiguous().bytes), name);
        }
    }

    /// <summary>A module with one zero parameter per name of a source (dots replaced), to exercise the loader.</summary>
    private sealed class ParameterBag : torch.nn.Module
    {
        public ParameterBag(IStateDictSource source) : base("bag")
        {
            foreach (string name in source.Names.Order(StringComparer.Ordinal))
                register_parameter(name.Replace('.', '_'), new TorchSharp.Modules.Parameter(torch.zeros(source.ShapeOf(name)), requires_grad: false));
            Map = source.Names.ToDictionary(n => n.Replace('.', '_'), n => n);
        }

        public Dictionary<string, string> Map { get; }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void InspectionReadsTheHeaderFacts(string caseName)
    {
        var fixture = Case(caseName);
        var inspection = SingleFileInspection.Inspect(SingleFileCheck.FileOf(fixture));
        using var checkpoint = SingleFileCheckpoint.Open(SingleFileCheck.FileOf(fixture), SingleFileArchitecture.FromFolder(fixture.PipelineFolder));
        Assert.Equal(checkpoint.Family, inspection.Family);
        var text = ConfigReader.Load(Path.Combine(fixture.PipelineFolder, "text_encoder", "config.json"));
        var unet = ConfigReader.Load(Path.Combine(fixture.PipelineFolder, "unet", "config.json"));
        Assert.Equal(text.GetInt("hidden_size"), inspection.TextEncoderWidth);
        Assert.Equal(unet.GetInt("cross_attention_dim"), inspection.CrossAttentionDim);
        using var file = SafetensorsFile.Open(SingleFileCheck.FileOf(fixture));
        Assert.Equal(file.Names.Count, inspection.TensorCounts.Values.Sum());
        Assert.Equal(0, inspection.TensorCounts["ema"]);
        Assert.Equal(file.Names.Count, inspection.DTypes["F32"]);
    }

    [Fact]
    public void PickleCheckpointsAreRefused()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string ckpt = temp.File("model.ckpt");
        File.WriteAllBytes(ckpt, [0x80, 0x02]);
        var ex = Assert.Throws<InvalidWeightsException>(() => SingleFileCheckpoint.Open(ckpt, SingleFileArchitecture.FromFolder(TestPaths.TinySd1)));
        Assert.Equal(Path.GetFullPath(ckpt), ex.FilePath);
        Assert.Throws<InvalidWeightsException>(() => SingleFileInspection.Inspect(ckpt));
    }

    /// <summary>Writes a copy of a case's single file with tensors added / removed / replaced.</summary>
    private static string Variant(TempDirectory temp, string caseName, Action<Dictionary<string, torch.Tensor>> edit)
    {
        var tensors = ReadFile(SingleFileCheck.FileOf(Case(caseName)));
        edit(tensors);
        string path = temp.File(Guid.NewGuid().ToString("N") + ".safetensors");
        SafetensorsWriter.Write(path, tensors);
        foreach (var t in tensors.Values) t.Dispose();
        return path;
    }

    [Fact]
    public void OriginalOnlyKeysAreSkippedAndLogged()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string path = Variant(temp, "tiny-sd1", t =>
        {
            foreach (string key in SingleFileKeyMap.DdpmBufferKeys) t[key] = torch.ones(1000);
            t["model_ema.decay"] = torch.tensor(0.9999f);
            t["model_ema.num_updates"] = torch.tensor(10L);
            t["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(Kept(0L), Kept(77L), Kept(1L)).unsqueeze(0);
            t[SingleFileKeyMap.EmaKeyOf("model.diffusion_model.input_blocks.0.0.weight")] = t["model.diffusion_model.input_blocks.0.0.weight"].clone();
        });
        var logger = new ListLogger();
        using var checkpoint = SingleFileCheckpoint.Open(path, SingleFileArchitecture.FromFolder(TestPaths.TinySd1), new SingleFileLoadOptions { Logger = logger });
        Assert.Equal(SingleFileKeyMap.DdpmBufferKeys.Count + 4, checkpoint.SkippedKeys.Count);
        Assert.Equal(1, checkpoint.EmaTensorCount);
        Assert.False(checkpoint.UsesEmaWeights);
        Assert.Contains(logger.Messages, m => m.Contains("ignoring 1 EMA tensors", StringComparison.Ordinal));
        Assert.Contains(logger.Messages, m => m.Contains("only original checkpoints hold", StringComparison.Ordinal));
    }

    [Fact]
    public void EmaWeightsAreUsedOnlyOnRequest()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string path = Variant(temp, "tiny-sd1", t =>
        {
            foreach (string key in t.Keys.Where(k => k.StartsWith("model.diffusion_model.", StringComparison.Ordinal)).ToArray())
                t[SingleFileKeyMap.EmaKeyOf(key)] = t[key].add(Kept(1.0f), One);
        });
        var architecture = SingleFileArchitecture.FromFolder(TestPaths.TinySd1);
        using var plain = SingleFileCheckpoint.Open(path, architecture);
        using var ema = SingleFileCheckpoint.Open(path, architecture, new SingleFileLoadOptions { UseEmaWeights = true });
        Assert.True(ema.UsesEmaWeights);
        var plainUnet = plain.OpenComponent("unet");
        var emaUnet = ema.OpenComponent("unet");
        Assert.Equal(plainUnet.Names.Order(), emaUnet.Names.Order());
        using var a = plainUnet.Read("conv_in.weight");
        using var b = emaUnet.Read("conv_in.weight");
        Assert.True(b.sub(a).sub(Kept(1.0f)).abs().max().item<float>() < 1e-6f);
        Assert.StartsWith("model_ema.", emaUnet.StoredKeyOf("conv_in.weight"), StringComparison.Ordinal);

        // A pruned file (no EMA copies) cannot serve an EMA request.
        var ex = Assert.Throws<InvalidWeightsException>(() =>
            SingleFileCheckpoint.Open(SingleFileCheck.FileOf(Case("tiny-sd1")), architecture, new SingleFileLoadOptions { UseEmaWeights = true }));
        Assert.Contains("no EMA copy", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownKeysAreAnErrorUnlessIgnoredByRequest()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string path = Variant(temp, "tiny-sd1", t => t["embedding_manager.foo"] = torch.zeros(3));
        var architecture = SingleFileArchitecture.FromFolder(TestPaths.TinySd1);
        var ex = Assert.Throws<InvalidWeightsException>(() => SingleFileCheckpoint.Open(path, architecture));
        Assert.Contains("embedding_manager.foo", ex.Message, StringComparison.Ordinal);
        using var ok = SingleFileCheckpoint.Open(path, architecture, new SingleFileLoadOptions { IgnoreKey = k => k.StartsWith("embedding_manager.", StringComparison.Ordinal) });
        Assert.Contains(ok.SkippedKeys, k => k.OriginalKey == "embedding_manager.foo");
    }

    [Fact]
    public void ConfigsOfTheOtherFamilyAreRejected()
    {
        // The SD 2.x file against SD 1.x configs: the layout (and the text width check) says no.
        Assert.Throws<InvalidWeightsException>(() =>
            SingleFileCheckpoint.Open(SingleFileCheck.FileOf(Case("tiny-sd2")), SingleFileArchitecture.FromFolder(TestPaths.TinySd1)));
        Assert.Throws<InvalidWeightsException>(() =>
            SingleFileCheckpoint.Open(SingleFileCheck.FileOf(Case("tiny-sd1")), SingleFileArchitecture.FromFolder(TestPaths.TinySd2)));
        var ex = Assert.Throws<InvalidWeightsException>(() =>
            SingleFileCheckpoint.Open(SingleFileCheck.FileOf(Case("tiny-sd2")), SingleFileArchitecture.FromFolder(TestPaths.TinySd2), new SingleFileLoadOptions { Family = StableDiffusionFamily.Sd1 }));
        Assert.Contains("Sd2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingBlocksAndWrongShapesAreReported()
    {
        using var temp = TestPaths.CreateTempDirectory();
        var architecture = SingleFileArchitecture.FromFolder(TestPaths.TinySd2);
        string noMid = Variant(temp, "tiny-sd2", t =>
        {
            foreach (string key in t.Keys.Where(k => k.StartsWith("model.diffusion_model.middle_block.1.", StringComparison.Ordinal)).ToArray()) t.Remove(key);
        });
        var ex = Assert.Throws<InvalidWeightsException>(() => SingleFileCheckpoint.Open(noMid, architecture));
        Assert.Contains("middle_block.1.", ex.Message, StringComparison.Ordinal);

        string badFused = Variant(temp, "tiny-sd2", t =>
            t["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_bias"] = torch.zeros(10));
        ex = Assert.Throws<InvalidWeightsException>(() => SingleFileCheckpoint.Open(badFused, architecture));
        Assert.Contains("in_proj_bias", ex.Message, StringComparison.Ordinal);

        string noText = Variant(temp, "tiny-sd2", t =>
        {
            foreach (string key in t.Keys.Where(k => k.StartsWith("cond_stage_model.", StringComparison.Ordinal)).ToArray()) t.Remove(key);
        });
        ex = Assert.Throws<InvalidWeightsException>(() => SingleFileCheckpoint.Open(noText, architecture));
        Assert.Contains("family", ex.Message, StringComparison.Ordinal);
        using var unetAndVae = SingleFileCheckpoint.Open(noText, architecture with { TextEncoder = null }, new SingleFileLoadOptions { Family = StableDiffusionFamily.Sd2 });
        Assert.Equal(["unet", "vae"], unetAndVae.Components);
    }

    [Fact]
    public void ExtraOpenClipLayersAndProjectionAreSkipped()
    {
        // Real SD 2.x files carry one more OpenCLIP layer than diffusers uses, plus logit_scale.
        using var temp = TestPaths.CreateTempDirectory();
        var architecture = SingleFileArchitecture.FromFolder(TestPaths.TinySd2);
        int layers = architecture.TextEncoder!.Layers;
        string path = Variant(temp, "tiny-sd2", t =>
        {
            foreach (string key in t.Keys.Where(k => k.StartsWith("cond_stage_model.model.transformer.resblocks.0.", StringComparison.Ordinal)).ToArray())
                t[key.Replace("resblocks.0.", $"resblocks.{layers}.", StringComparison.Ordinal)] = t[key].clone();
            t["cond_stage_model.model.logit_scale"] = torch.tensor(4.6f);
        });
        using var checkpoint = SingleFileCheckpoint.Open(path, architecture);
        Assert.Contains(checkpoint.SkippedKeys, k => k.OriginalKey.Contains($"resblocks.{layers}.", StringComparison.Ordinal));
        Assert.Contains(checkpoint.SkippedKeys, k => k.OriginalKey == "cond_stage_model.model.logit_scale");
        Assert.DoesNotContain(checkpoint.OpenComponent("text_encoder").Names, n => n.Contains($"layers.{layers}.", StringComparison.Ordinal));
    }

    [Fact]
    public void SettingsFollowTheDocumentedRules()
    {
        var sd1 = new SingleFileModelSettings().Resolve(StableDiffusionFamily.Sd1);
        Assert.Equal(("epsilon", 512), (sd1.PredictionType, sd1.ImageSize));
        var ex = Assert.Throws<InvalidWeightsException>(() => new SingleFileModelSettings().Resolve(StableDiffusionFamily.Sd2));
        Assert.Contains("v_prediction", ex.Message, StringComparison.Ordinal);
        var v = new SingleFileModelSettings { PredictionType = "v_prediction" }.Resolve(StableDiffusionFamily.Sd2);
        Assert.Equal(768, v.ImageSize);
        var fromFolder = new SingleFileModelSettings().Resolve(StableDiffusionFamily.Sd2, TestPaths.TinySd2);
        Assert.Equal("v_prediction", fromFolder.PredictionType);
        var unet = ConfigReader.Load(Path.Combine(TestPaths.TinySd2, "unet", "config.json"));
        var vae = ConfigReader.Load(Path.Combine(TestPaths.TinySd2, "vae", "config.json"));
        Assert.Equal(unet.GetInt("sample_size") << (vae.GetIntArray("block_out_channels").Length - 1), fromFolder.ImageSize);
        Assert.Throws<ArgumentException>(() => new SingleFileModelSettings { PredictionType = "sample" }.Resolve(StableDiffusionFamily.Sd1));
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }
}
