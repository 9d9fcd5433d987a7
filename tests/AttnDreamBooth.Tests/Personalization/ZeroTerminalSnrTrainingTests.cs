using System.Text.Json.Nodes;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

/// <summary>
/// A model whose sampler rescales its schedule to zero terminal SNR (DDIM's <c>rescale_betas_zero_snr</c>) is fine-tuned
/// with that schedule's noise, although diffusers 0.24's DDPM, which adds the training noise, has no such option.
/// </summary>
public sealed class ZeroTerminalSnrTrainingTests
{
    [Fact]
    public async Task TheRescaledScheduleOfTheModelsSamplerIsTheScheduleItIsTrainedWith()
    {
        using var temp = TestPaths.CreateTempDirectory();
        string rescaled = Model(temp.File("rescaled"), rescale: true);
        string plain = Model(temp.File("plain"), rescale: false);
        var plan = TinyPipeline.Plan(0, 0, 3);

        var withRescale = await Train(plan, rescaled);
        var again = await Train(plan, rescaled);
        var without = await Train(plan, plain);

        Assert.Equal(withRescale, again);
        // Same seeds, latents, noise and timesteps: only the noise schedule differs, so every loss does.
        Assert.Equal(without.Count, withRescale.Count);
        for (int i = 0; i < without.Count; i++) Assert.NotEqual(without[i], withRescale[i]);
        Assert.All(withRescale, l => Assert.True(double.IsFinite(l) && l > 0));
    }

    private static async Task<IReadOnlyList<double>> Train(StagePlan plan, string model)
    {
        using var pipeline = TinyPipeline.Build(plan, TinyPipeline.Options(), model);
        return (await pipeline.TrainAsync(TinyPipeline.Dog())).LossHistory.ToArray();
    }

    // The fixture with a DDIM sampler; the two copies differ in rescale_betas_zero_snr only.
    private static string Model(string folder, bool rescale)
    {
        TestPaths.CopyDirectory(TestPaths.TinySd1, folder);
        string file = Path.Combine(folder, "scheduler", "scheduler_config.json");
        var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        json["_class_name"] = "DDIMScheduler";
        json.Remove("skip_prk_steps");
        json["prediction_type"] = "v_prediction";
        json["timestep_spacing"] = "trailing";
        json["rescale_betas_zero_snr"] = rescale;
        File.WriteAllText(file, json.ToJsonString());
        string index = Path.Combine(folder, "model_index.json");
        var pipeline = JsonNode.Parse(File.ReadAllText(index))!.AsObject();
        pipeline["scheduler"] = new JsonArray("diffusers", "DDIMScheduler");
        File.WriteAllText(index, pipeline.ToJsonString());
        return folder;
    }
}
