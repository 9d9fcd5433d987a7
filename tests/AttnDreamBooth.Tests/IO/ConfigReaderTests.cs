using AttnDreamBooth.IO;

namespace AttnDreamBooth.Tests.IO;

public sealed class ConfigReaderTests
{
    private const string Json = """
        {
          "_class_name": "UNet2DConditionModel",
          "in_channels": 4,
          "norm_eps": 1e-05,
          "flip_sin_to_cos": true,
          "act_fn": "silu",
          "block_out_channels": [32, 64],
          "attention_head_dim": 8,
          "per_block": [1, 2],
          "num_class_embeds": null,
          "an_unknown_key": {"whatever": [1, 2, 3]},
          "neg": "-inf",
          "pos": "Infinity",
          "nested": {"k": 3},
          "fraction": 2.5
        }
        """;

    private static ConfigReader Reader() => ConfigReader.Parse(Json, "unet/config.json");

    [Fact]
    public void TypedValuesAreRead()
    {
        var c = Reader();
        Assert.Equal(4, c.GetInt("in_channels"));
        Assert.Equal(1e-5, c.GetDouble("norm_eps"));
        Assert.Equal(4.0, c.GetDouble("in_channels"));
        Assert.True(c.GetBool("flip_sin_to_cos"));
        Assert.Equal("silu", c.GetString("act_fn"));
        Assert.Equal([32, 64], c.GetIntArray("block_out_channels"));
        Assert.Equal([8, 8], c.GetIntOrList("attention_head_dim", 2));
        Assert.Equal([1, 2], c.GetIntOrList("per_block", 2));
        Assert.Equal(3, c.Section("nested")!.GetInt("k"));
        Assert.Null(c.Section("absent"));
    }

    [Fact]
    public void MissingRequiredKeyNamesFileAndKey()
    {
        var ex = Assert.Throws<ModelConfigException>(() => Reader().GetInt("out_channels"));
        Assert.Equal("unet/config.json", ex.FilePath);
        Assert.Equal("out_channels", ex.Key);
        Assert.Contains("unet/config.json", ex.Message);
        Assert.Contains("'out_channels'", ex.Message);
        Assert.Contains("missing", ex.Message);
        Assert.Throws<ModelConfigException>(() => Reader().GetString("nope"));
        Assert.Throws<ModelConfigException>(() => Reader().GetIntArray("nope"));
        Assert.Throws<ModelConfigException>(() => Reader().GetIntOrList("nope", 3));
    }

    [Fact]
    public void MissingOrNullKeyTakesTheDefault()
    {
        var c = Reader();
        Assert.Equal(7, c.GetInt("out_channels", 7));
        Assert.Equal(11, c.GetInt("num_class_embeds", 11));
        Assert.Null(c.GetNullableInt("num_class_embeds"));
        Assert.Null(c.GetNullableInt("absent"));
        Assert.Null(c.GetNullableString("absent"));
        Assert.False(c.Has("num_class_embeds"));
        Assert.True(c.Has("in_channels"));
        Assert.Equal([5, 5, 5], c.GetIntOrList("absent", 3, [5]));
        Assert.Equal([1, 2, 3], c.GetIntOrList("absent", 3, [1, 2, 3]));
        Assert.Equal("gelu", c.GetString("absent", "gelu"));
    }

    [Theory]
    [InlineData("act_fn", "an integer")]
    [InlineData("fraction", "an integer")]
    [InlineData("block_out_channels", "an integer")]
    public void WrongTypeForIntNamesKeyAndValue(string key, string expected)
    {
        var ex = Assert.Throws<ModelConfigException>(() => Reader().GetInt(key));
        Assert.Equal(key, ex.Key);
        Assert.Contains(expected, ex.Problem);
    }

    [Fact]
    public void OtherWrongTypesAreErrors()
    {
        var c = Reader();
        Assert.Contains("true or false", Assert.Throws<ModelConfigException>(() => c.GetBool("in_channels")).Problem);
        Assert.Contains("a string", Assert.Throws<ModelConfigException>(() => c.GetString("in_channels")).Problem);
        Assert.Contains("a number", Assert.Throws<ModelConfigException>(() => c.GetDouble("act_fn")).Problem);
        Assert.Contains("array of integers", Assert.Throws<ModelConfigException>(() => c.GetIntArray("act_fn")).Problem);
        Assert.Equal("block_out_channels", Assert.Throws<ModelConfigException>(() => c.GetIntOrList("block_out_channels", 3)).Key);
        Assert.Equal("act_fn", Assert.Throws<ModelConfigException>(() => c.Section("act_fn")).Key);
        var parsed = ConfigReader.Parse("""{"xs": [1, "two"]}""");
        Assert.Throws<ModelConfigException>(() => parsed.GetIntArray("xs"));
    }

    [Fact]
    public void UnknownKeysAreIgnored()
    {
        var c = Reader();
        Assert.Equal(4, c.GetInt("in_channels"));
        Assert.True(c.Has("an_unknown_key"));
    }

    [Fact]
    public void NonFiniteNumbersAsStringsAndAsPythonLiterals()
    {
        var c = Reader();
        Assert.Equal(double.NegativeInfinity, c.GetDouble("neg"));
        Assert.Equal(double.PositiveInfinity, c.GetDouble("pos"));
        var python = ConfigReader.Parse("""{"a": -Infinity, "b": Infinity, "c": NaN, "s": "NaN -Infinity", "arr": [NaN, 1]}""");
        Assert.Equal(double.NegativeInfinity, python.GetDouble("a"));
        Assert.Equal(double.PositiveInfinity, python.GetDouble("b"));
        Assert.True(double.IsNaN(python.GetDouble("c")));
        Assert.Equal("NaN -Infinity", python.GetString("s"));
    }

    [Fact]
    public void LoadNamesTheFileForMissingOrInvalidJson()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string missing = dir.File("config.json");
        Assert.Equal(missing, Assert.Throws<ModelConfigException>(() => ConfigReader.Load(missing)).FilePath);
        File.WriteAllText(missing, "{ not json");
        var ex = Assert.Throws<ModelConfigException>(() => ConfigReader.Load(missing));
        Assert.Contains("not valid JSON", ex.Problem);
        File.WriteAllText(missing, "[1, 2]");
        Assert.Contains("JSON object", Assert.Throws<ModelConfigException>(() => ConfigReader.Load(missing)).Problem);
        File.WriteAllText(missing, "{\"a\": 1, /* comment */ \"b\": 2,}");
        Assert.Equal(2, ConfigReader.Load(missing).GetInt("b"));
    }
}

public sealed class ModelIndexTests
{
    [Fact]
    public void FixtureIndexListsNonNullComponents()
    {
        var index = ModelIndex.Load(Path.Combine(TestPaths.TinySd1, "model_index.json"));
        Assert.Equal("StableDiffusionPipeline", index.ClassName);
        Assert.NotNull(index.DiffusersVersion);
        Assert.Equal(["scheduler", "text_encoder", "tokenizer", "unet", "vae"], index.Components.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(new PipelineComponent("unet", "diffusers", "UNet2DConditionModel"), index.Components["unet"]);
        Assert.Equal("transformers", index.Components["text_encoder"].Library);
    }

    [Fact]
    public void MalformedEntriesAreErrorsNamingTheKey()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("model_index.json");
        File.WriteAllText(path, """{"_class_name": "P", "unet": ["diffusers"]}""");
        Assert.Equal("unet", Assert.Throws<ModelConfigException>(() => ModelIndex.Load(path)).Key);
        File.WriteAllText(path, """{"_class_name": "P", "unet": ["diffusers", 3]}""");
        Assert.Equal("unet", Assert.Throws<ModelConfigException>(() => ModelIndex.Load(path)).Key);
        File.WriteAllText(path, """{"unet": ["diffusers", "UNet2DConditionModel"]}""");
        Assert.Equal("_class_name", Assert.Throws<ModelConfigException>(() => ModelIndex.Load(path)).Key);
    }
}
