using AttnDreamBooth.IO;
using AttnDreamBooth.Schedulers;

namespace AttnDreamBooth.Tests.Schedulers;

/// <summary>Scheduler configs that would yield black images are refused with the file and key named.</summary>
public sealed class SchedulerConfigBoundsTests
{
    private static string Config(string betas) =>
        $$"""{ "_class_name": "DDIMScheduler", "beta_schedule": "scaled_linear", {{betas}} }""";

    [Theory]
    [InlineData("\"beta_start\": 0.012, \"beta_end\": 0.00085, \"num_train_timesteps\": 1000", "beta_start")]
    [InlineData("\"beta_start\": 0.012, \"beta_end\": 0.012, \"num_train_timesteps\": 1000", "beta_start")]
    [InlineData("\"beta_start\": 0.00085, \"beta_end\": 0.012, \"num_train_timesteps\": 2000000000", "num_train_timesteps")]
    [InlineData("\"beta_start\": 0.00085, \"beta_end\": 0.012, \"num_train_timesteps\": 100000", "num_train_timesteps")]
    [InlineData("\"num_train_timesteps\": 3, \"trained_betas\": [0.1, 0.05, 0.2]", "trained_betas")]
    public void BrokenSchedulesAreRefusedNamingFileAndKey(string betas, string key)
    {
        var error = Assert.Throws<ModelConfigException>(() => SchedulerConfig.Parse(Config(betas), "sched/scheduler_config.json"));
        Assert.Equal("sched/scheduler_config.json", error.FilePath);
        Assert.Equal(key, error.Key);
    }

    [Fact]
    public void RealSchedulesStillLoad()
    {
        var config = SchedulerConfig.Parse(Config("\"beta_start\": 0.00085, \"beta_end\": 0.012, \"num_train_timesteps\": 1000"));
        Assert.Equal(1000, config.NumTrainTimesteps);
        Assert.Equal(4, SchedulerConfig.Parse(Config("\"num_train_timesteps\": 4, \"trained_betas\": [0.1, 0.1, 0.2, 0.3]")).NumTrainTimesteps);
        Assert.Equal(1000, SchedulerConfig.Parse("""{ "_class_name": "DDIMScheduler", "beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 1000 }""").NumTrainTimesteps);
    }
}
