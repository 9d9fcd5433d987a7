using System.Diagnostics;
using System.Text.Json.Nodes;

namespace AttnDreamBooth.Tests.Limits;

/// <summary>
/// Crafted configs, weights and photos given to the CLI in a child process under a 6 GiB address-space limit and a
/// timeout: each is refused with exit 2 and one clear message, never an allocation storm, a hang or a stack trace.
/// </summary>
public sealed class UntrustedInputCliTests
{
    /// <summary>A copy of the tiny SD 1.x pipeline with <paramref name="mutate"/> applied.</summary>
    private static string CraftedModel(TempDirectory dir, Action<string> mutate)
    {
        string model = dir.File("model");
        foreach (string file in Directory.EnumerateFiles(TestPaths.TinySd1, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(model, Path.GetRelativePath(TestPaths.TinySd1, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        mutate(model);
        return model;
    }

    private static void EditJson(string path, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    private static BoundedCli.Result Generate(string model, TempDirectory dir) =>
        BoundedCli.Run(["generate", "--model", model, "--concept", dir.File("no-concept"), "--prompt", "a dog", "--out", dir.File("out"), "--steps", "1"]);

    private static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start("mkfifo", [path])!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    public static TheoryData<string, string, string> HugeConfigs() => new()
    {
        // component, JSON edit (key=value as JSON), expected words
        { "unet", """{"block_out_channels": [100000000, 100000000]}""", "MaxChannels" },
        { "unet", """{"sample_size": 1000000}""", "MaxSampleSize" },
        { "unet", """{"layers_per_block": 1000000}""", "MaxLayersPerBlock" },
        { "unet", """{"norm_num_groups": 0}""", "norm_num_groups" },
        { "unet", """{"block_out_channels": [16384, 16384], "norm_num_groups": 32, "attention_head_dim": 8, "transformer_layers_per_block": 60}""", "MaxParameters" },
        { "vae", """{"block_out_channels": [100000000, 100000000]}""", "MaxChannels" },
        { "text_encoder", """{"vocab_size": 2000000000}""", "MaxVocabSize" },
        { "text_encoder", """{"num_hidden_layers": 100000}""", "MaxTextLayers" },
        { "scheduler", """{"num_train_timesteps": 2000000000}""", "MaxTrainTimesteps" },
    };

    [Theory]
    [MemberData(nameof(HugeConfigs))]
    public void AbsurdConfigValuesAreRefusedBeforeAllocation(string component, string edit, string limit)
    {
        using var dir = TestPaths.CreateTempDirectory();
        var changes = JsonNode.Parse(edit)!.AsObject();
        string file = component == "scheduler" ? "scheduler_config.json" : "config.json";
        string model = CraftedModel(dir, m => EditJson(Path.Combine(m, component, file), json =>
        {
            foreach (var (key, value) in changes) json[key] = value?.DeepClone();
        }));
        var result = Generate(model, dir);
        BoundedCli.AssertRefused(result, limit);
    }

    public static TheoryData<string, string, string> WithinLimitsButTooLargeForMemory() => new()
    {
        // Every value and the estimated parameter count are within ResourceLimits, but one tensor (a 29 GB embedding
        // table, a 7.5 GB input convolution) is larger than the child's whole address space.
        { "text_encoder", """{"vocab_size": 900000, "hidden_size": 8192, "num_attention_heads": 8, "num_hidden_layers": 0}""", "building the text encoder" },
        { "unet", """{"in_channels": 16384, "conv_in_kernel": 15, "block_out_channels": [512, 512]}""", "building the U-Net" },
    };

    [Theory]
    [MemberData(nameof(WithinLimitsButTooLargeForMemory))]
    public void AllowedConfigsThatDoNotFitInMemoryFailWithOneClearLine(string component, string edit, string what)
    {
        using var dir = TestPaths.CreateTempDirectory();
        var changes = JsonNode.Parse(edit)!.AsObject();
        string model = CraftedModel(dir, m => EditJson(Path.Combine(m, component, "config.json"), json =>
        {
            foreach (var (key, value) in changes) json[key] = value?.DeepClone();
        }));
        var result = Generate(model, dir);
        // Exit 2 with the typed message, not an abort (134) or a native stack trace.
        BoundedCli.AssertRefused(result, "Out of memory while " + what, "libtorch could not allocate", "ResourceLimits.MaxParameters");
    }

    [Fact]
    public void FifoInPlaceOfWeightsOrConfigIsRefusedWithoutHanging()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string weights = CraftedModel(dir, m =>
        {
            string file = Path.Combine(m, "unet", "diffusion_pytorch_model.safetensors");
            File.Delete(file);
            MakeFifo(file);
        });
        BoundedCli.AssertRefused(Generate(weights, dir), "FIFO");

        using var dir2 = TestPaths.CreateTempDirectory();
        string config = CraftedModel(dir2, m =>
        {
            string file = Path.Combine(m, "vae", "config.json");
            File.Delete(file);
            MakeFifo(file);
        });
        BoundedCli.AssertRefused(Generate(config, dir2), "not a regular file");
    }

    [Fact]
    public void TruncatedWeightsAreRefused()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string model = CraftedModel(dir, m =>
        {
            string file = Path.Combine(m, "unet", "diffusion_pytorch_model.safetensors");
            using var stream = new FileStream(file, FileMode.Open);
            stream.SetLength(stream.Length / 2);
        });
        BoundedCli.AssertRefused(Generate(model, dir), "diffusion_pytorch_model.safetensors");
    }

    public static TheoryData<string, string> BadPhotos() => new()
    {
        { "text-named.jpg", "text" },
        { "zero.jpg", "dev-zero" },
        { "pipe.jpg", "fifo" },
        { "-rf --force.jpg", "text" },
        { "new\nline ü 😀.png", "text" },
    };

    [Theory]
    [MemberData(nameof(BadPhotos))]
    public void BadPhotosAreRefusedWithoutHangingOrAllocating(string name, string kind)
    {
        using var dir = TestPaths.CreateTempDirectory();
        string photos = dir.File("photos");
        Directory.CreateDirectory(photos);
        foreach (string jpg in Directory.GetFiles(TinyPipeline.DogPhotos, "*.jpg").Order(StringComparer.Ordinal).Take(2))
            File.Copy(jpg, Path.Combine(photos, Path.GetFileName(jpg)));
        string bad = Path.Combine(photos, name);
        switch (kind)
        {
            case "text": File.WriteAllText(bad, "this is not an image\n"); break;
            case "dev-zero": File.CreateSymbolicLink(bad, "/dev/zero"); break;
            case "fifo": MakeFifo(bad); break;
        }
        var result = BoundedCli.Run(["train", "--model", TestPaths.TinySd1, "--images", photos, "--category", "dog", "--out", dir.File("out"), "--steps", "1,0,0"]);
        BoundedCli.AssertRefused(result, Path.GetFileName(name).Split('\n')[0]);
        Assert.False(Directory.Exists(dir.File("out/concept")));
    }
}
