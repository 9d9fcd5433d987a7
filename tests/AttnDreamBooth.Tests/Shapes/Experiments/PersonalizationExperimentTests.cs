using System.Text.Json;
using AttnDreamBooth.Cli;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Shapes;
using AttnDreamBooth.Shapes.Experiments;
using AttnDreamBooth.Tests.Cli;
using AttnDreamBooth.Tests.IO;

namespace AttnDreamBooth.Tests.Shapes.Experiments;

/// <summary>The experiment end to end on the shipped Shapes model with a few optimizer steps per method: robust facts only
/// (files, ranges, reproducibility, reuse), never an ordering of the methods.</summary>
public sealed class PersonalizationExperimentTests
{
    private static readonly ShapesWorld World = ShapesWorld.Default;
    private static string ShapesModel => Path.Combine(TestPaths.RepoRoot, "samples", "models", "shapes-sd");

    private static PersonalizationExperimentOptions Options(string output) => new()
    {
        ModelFolder = ShapesModel,
        Concepts = [ConceptSpec.Load(Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "galaxy-star.json"), World)],
        Prompts =
        [
            ConceptPrompts.Parse("a photo of a {V} on the beach", World),
            ConceptPrompts.Parse("a photo of a {V} in the snow", World),
            ConceptPrompts.Parse("a photo of a small {V} next to a red circle on a pink background", World),
        ],
        OutputFolder = output,
        Methods = [PersonalizationMethod.TextualInversion, PersonalizationMethod.DreamBooth, PersonalizationMethod.AttnDreamBooth],
        Seeds = 2,
        StepsScale = 3.0 / StagePlan.ReferenceTotalSteps,
        ClassImages = 2,
        Generation = ShapesPersonalization.Generation with { Steps = 3 },
    };

    [Fact]
    public async Task TheSameSettingsGiveTheSameNumbersAndARerunReusesEveryCell()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var options = Options(dir.File("a"));
        Assert.Equal([3, 3, 3], options.Methods.Select(m => options.PlanFor(m).TotalSteps));
        var progress = new RecordingProgress<ExperimentProgress>();
        var first = await PersonalizationExperiment.RunAsync(options, progress);

        // Files: the report, a grid, and per cell its stored results and every image with its map.
        foreach (string file in new[] { "results.csv", "results.json", "summary.md", "scatter.png", "grid-galaxy-star.png" })
            Assert.True(File.Exists(dir.File($"a/{file}")), file);
        Assert.Equal(first.Files.Order(), Directory.GetFiles(dir.File("a")).Order());
        foreach (string method in new[] { "ti", "dreambooth", "attndreambooth" })
            Assert.True(File.Exists(dir.File($"a/cells/galaxy-star/{method}/cell.json")), method);
        Assert.All(first.Scores, s =>
        {
            Assert.True(File.Exists(Path.Combine(first.OutputFolder, s.Image)));
            Assert.True(File.Exists(Path.Combine(first.OutputFolder, s.Heatmap)));
        });

        // Rows: every prompt the concept contrasts with × 2 seeds per method, AttnDreamBooth's also after stages 1 and 2.
        int prompts = options.Prompts.Count(p => options.Concepts[0].ContrastsWith(p.Background, World));
        Assert.Equal(prompts * 2 * (1 + 1 + 3), first.Scores.Count);
        Assert.Equal([TrainingStage.Embedding, TrainingStage.CrossAttention, (TrainingStage?)null],
            first.Scores.Where(s => s.Method == PersonalizationMethod.AttnDreamBooth).Select(s => s.AfterStage).Distinct());
        Assert.Equal(first.Scores.Count + 1, File.ReadAllLines(dir.File("a/results.csv")).Length);
        Assert.Contains("training_seed", SnakeCaseJson.AssertKeys(File.ReadAllText(dir.File("a/results.json")), "requested"));
        using (var json = JsonDocument.Parse(File.ReadAllText(dir.File("a/results.json"))))
            Assert.Equal(first.Scores.Count, json.RootElement.GetProperty("scores").GetArrayLength());

        // Every score is in [0, 1]; [V]'s share is measured at each of the model's three layer resolutions.
        Assert.All(first.Scores, s =>
        {
            Assert.InRange(s.Identity.Score, 0, 1);
            Assert.InRange(s.ReferenceIdentity, 0, 1);
            Assert.InRange(s.Text, 0, 1);
            if (s.HeatmapIoU is { } iou) Assert.InRange(iou, 0, 1);
            Assert.Equal([16, 8, 4], s.WordShares.Keys);
            Assert.All(s.WordShares.Values, v => Assert.InRange(v, 0, 1));
            // The IoU is also measured per layer resolution, wherever the all-layer one is.
            Assert.Equal([16, 8, 4], s.HeatmapIoUByResolution.Keys);
            Assert.All(s.HeatmapIoUByResolution.Values, v =>
            {
                Assert.Equal(s.HeatmapIoU is null, v is null);
                if (v is { } r) Assert.InRange(r, 0, 1);
            });
            Assert.Equal(options.Prompts[s.PromptIndex].Complexity, s.Attributes.Count);
        });
        Assert.Contains(first.Scores, s => s.HeatmapIoU is not null);
        Assert.Equal(options.Methods.Count + 2, first.Summary.Count);
        Assert.All(first.Summary, s => Assert.Equal([16, 8, 4], s.HeatmapIoUByResolution.Keys));

        // The per-resolution IoU columns of results.csv hold the scores' values; results.json and summary.md carry them.
        var csv = File.ReadAllLines(dir.File("a/results.csv"));
        var header = csv[0].Split(',');
        foreach (int h in new[] { 16, 8, 4 })
        {
            int column = Array.IndexOf(header, $"v_map_iou_{h}");
            Assert.True(column > Array.IndexOf(header, "v_map_iou"), $"v_map_iou_{h}");
            // The prompts hold no commas, so a plain split finds the columns.
            var values = csv.Skip(1).Select(line => line.Split(',')[column]).ToArray();
            Assert.Equal(first.Scores.Select(s => s.HeatmapIoUByResolution[h] is { } v ? v.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : ""), values);
        }
        using (var json = JsonDocument.Parse(File.ReadAllText(dir.File("a/results.json"))))
        {
            var stored = json.RootElement.GetProperty("scores")[0].GetProperty("heatmap_iou_by_resolution");
            Assert.Equal(["16", "8", "4"], stored.EnumerateObject().Select(p => p.Name));
        }
        string summaryText = File.ReadAllText(dir.File("a/summary.md"));
        Assert.Contains("| [V]-map IoU | [V]-map IoU 16×16 | [V]-map IoU 8×8 | [V]-map IoU 4×4 | [V] share 16×16 |", summaryText, StringComparison.Ordinal);
        Assert.DoesNotContain("is missing for", summaryText, StringComparison.Ordinal);
        Assert.Contains(progress.Items, p => p.Phase == ExperimentPhase.Training && p.Training is not null);
        Assert.Contains(progress.Items, p => p.Phase == ExperimentPhase.ClassImages);
        Assert.DoesNotContain(progress.Items, p => p.Phase == ExperimentPhase.CellReused);
        // The embedding moves in the stages that train it and in no other.
        var movement = first.Cells.ToDictionary(c => c.Method, c => c.EmbeddingMovement!);
        Assert.Equal([TrainingStage.Embedding], movement[PersonalizationMethod.TextualInversion].Keys);
        Assert.True(movement[PersonalizationMethod.TextualInversion][TrainingStage.Embedding] > 0);
        Assert.Equal(0.0, Assert.Single(movement[PersonalizationMethod.DreamBooth]).Value);
        var attn = movement[PersonalizationMethod.AttnDreamBooth];
        Assert.True(attn[TrainingStage.Embedding] > 0);
        Assert.Equal(0.0, attn[TrainingStage.CrossAttention]);
        Assert.Equal(0.0, attn[TrainingStage.UNet]);
        Assert.Contains("## Embedding movement per stage", summaryText, StringComparison.Ordinal);

        // The same settings in another folder: the same numbers, image for image.
        var second = await PersonalizationExperiment.RunAsync(options with { OutputFolder = dir.File("b") });
        Assert.Equal(File.ReadAllText(dir.File("a/results.csv")), File.ReadAllText(dir.File("b/results.csv")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(first.OutputFolder, first.Scores[^1].Image)),
            File.ReadAllBytes(Path.Combine(second.OutputFolder, second.Scores[^1].Image)));

        // Again in the first folder: every cell is reused, nothing is trained, the results are unchanged.
        var again = new RecordingProgress<ExperimentProgress>();
        var third = await PersonalizationExperiment.RunAsync(options, again);
        Assert.All(third.Cells, c => Assert.True(c.Reused));
        Assert.Equal(first.Cells.Select(c => c.EmbeddingMovement), third.Cells.Select(c => c.EmbeddingMovement));
        Assert.DoesNotContain(again.Items, p => p.Phase is ExperimentPhase.Training or ExperimentPhase.Generating);
        Assert.Equal(File.ReadAllText(dir.File("b/results.csv")), File.ReadAllText(dir.File("a/results.csv")));

        // Other settings do not reuse a cell: one more seed runs every cell again.
        var fourth = await PersonalizationExperiment.RunAsync(options with { Seeds = 3, Methods = [PersonalizationMethod.TextualInversion] });
        Assert.False(Assert.Single(fourth.Cells).Reused);
        Assert.Equal(prompts * 3, fourth.Scores.Count);
    }

    [Fact]
    public async Task AnInterruptedRunContinuesWithTheCellsItHadNotFinished()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var options = Options(dir.File("out")) with { Methods = [PersonalizationMethod.TextualInversion, PersonalizationMethod.AttnDreamBooth], Seeds = 1 };
        using var cts = new CancellationTokenSource();
        var stop = new InlineProgress<ExperimentProgress>(p =>
        {
            if (p.Phase == ExperimentPhase.CellStarted && p.Cell == 2) cts.Cancel();
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => PersonalizationExperiment.RunAsync(options, stop, cts.Token));
        Assert.True(File.Exists(dir.File("out/cells/galaxy-star/ti/cell.json")));
        Assert.False(File.Exists(dir.File("out/cells/galaxy-star/attndreambooth/cell.json")));
        Assert.False(File.Exists(dir.File("out/results.csv")));

        var resumed = await PersonalizationExperiment.RunAsync(options);
        Assert.Equal([true, false], resumed.Cells.Select(c => c.Reused));
        Assert.Equal(resumed.Scores.Count + 1, File.ReadAllLines(dir.File("out/results.csv")).Length);
    }

    // With Lora set, every method's stages 2 and 3 train adapters at the Shapes LoRA rate and nothing else changes; a LoRA
    // cell is not a reuse of the fine-tuned one, and its trained concept carries adapters instead of a U-Net.
    [Fact]
    public async Task LoraOptionsTurnStagesTwoAndThreeIntoAdapterStagesAndKeepTheirCellsApart()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var full = Options(dir.File("out")) with { Methods = [PersonalizationMethod.AttnDreamBooth], Seeds = 1 };
        var lora = full with { Lora = new AttnDreamBooth.Models.Lora.LoraOptions(Rank: 2) };
        var fullPlan = full.PlanFor(PersonalizationMethod.AttnDreamBooth);
        var loraPlan = lora.PlanFor(PersonalizationMethod.AttnDreamBooth);
        Assert.Null(fullPlan.Stage2.Lora);
        Assert.Null(fullPlan.Stage3.Lora);
        foreach (var stage in new[] { loraPlan.Stage2, loraPlan.Stage3 })
        {
            Assert.Equal(2, stage.Lora?.Rank);
            Assert.Equal(1e-3, stage.LearningRate, 12);
        }
        Assert.Equal(fullPlan.Stage1, loraPlan.Stage1);
        Assert.Equal(fullPlan.TotalSteps, loraPlan.TotalSteps);
        var ti = lora.PlanFor(PersonalizationMethod.TextualInversion);
        Assert.Equal([TrainingStage.Embedding], ti.EnabledStages);

        var first = await PersonalizationExperiment.RunAsync(full);
        var second = await PersonalizationExperiment.RunAsync(lora);
        Assert.False(Assert.Single(second.Cells).Reused);
        Assert.Contains("LoRA adapters (rank 2", File.ReadAllText(dir.File("out/summary.md")), StringComparison.Ordinal);
        Assert.Equal(first.Scores.Count, second.Scores.Count);
    }

    // With EightBitOptimizerStates set, every cell trains with 8-bit AdamW moments: its cell is not a reuse of the float32
    // one, the reports say so, and the training itself changes — the first loss (before any update) is the float32 run's,
    // later ones are not (a stage's first update reads fresh float32 moments; the quantized ones take over from its second).
    [Fact]
    public async Task EightBitOptimizerStatesReachTheTrainerAndKeepTheirCellsApart()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var float32 = Options(dir.File("out")) with
        {
            Methods = [PersonalizationMethod.AttnDreamBooth],
            Seeds = 1,
            StepsScale = 12.0 / StagePlan.ReferenceTotalSteps,
            StageMetrics = false,
        };
        var eightBit = float32 with { EightBitOptimizerStates = true };
        Assert.Equal(float32.PlanFor(PersonalizationMethod.AttnDreamBooth), eightBit.PlanFor(PersonalizationMethod.AttnDreamBooth));
        Assert.True(float32.PlanFor(PersonalizationMethod.AttnDreamBooth).Stage3.Steps >= 3);

        await PersonalizationExperiment.RunAsync(float32);
        var float32Losses = StoredLosses(dir.File("out/cells/galaxy-star/attndreambooth/cell.json"));
        var second = await PersonalizationExperiment.RunAsync(eightBit);
        var eightBitLosses = StoredLosses(dir.File("out/cells/galaxy-star/attndreambooth/cell.json"));

        Assert.False(Assert.Single(second.Cells).Reused);
        Assert.Contains("AdamW moments in 8 bits", File.ReadAllText(dir.File("out/summary.md")), StringComparison.Ordinal);
        using (var json = JsonDocument.Parse(File.ReadAllText(dir.File("out/results.json"))))
            Assert.True(json.RootElement.GetProperty("settings").GetProperty("eight_bit_optimizer_states").GetBoolean());
        Assert.Equal(float32Losses.Length, eightBitLosses.Length);
        Assert.Equal(float32Losses[0], eightBitLosses[0]);
        Assert.Contains(Enumerable.Range(0, float32Losses.Length), i => float32Losses[i] != eightBitLosses[i]);
    }

    private static double[] StoredLosses(string cellFile)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(cellFile));
        return json.RootElement.GetProperty("loss_history").EnumerateArray().Select(e => e.GetDouble()).ToArray();
    }

    [Fact]
    public async Task TheCommandRunsOnAConceptSpecAndAPromptFileItHasNeverSeen()
    {
        using var dir = TestPaths.CreateTempDirectory();
        Directory.CreateDirectory(dir.File("concepts"));
        File.WriteAllText(dir.File("concepts/teal-diamond.json"), """
            {
              "name": "teal-diamond",
              "description": "A teal diamond with orange stripes, a dark outline and a small white heart.",
              "category": "diamond",
              "appearance": {
                "primary": "#10a0a0", "secondary": "#f08020", "pattern": "striped",
                "outline": "#202020", "outlineWidth": 0.08,
                "emblem": "heart", "emblemColor": "#ffffff", "emblemSize": 0.3
              },
              "photos": { "count": 4, "seed": 3, "backgrounds": [ "white", "yellow" ], "positions": [ "centre", "left" ], "sizes": [ "large" ] }
            }
            """);
        File.WriteAllText(dir.File("my-prompts.txt"), "# two new prompts\nan image of a {V} at the top on the grass\na picture of a small {V} next to a blue heart on a yellow background\n");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(
        [
            "shapes", "experiment", "--concepts", dir.File("concepts"), "--prompts", dir.File("my-prompts.txt"), "--out", dir.File("out"),
            "--model", ShapesModel, "--methods", "ti", "--seeds", "1", "--steps-scale", "0.003", "--optimizer-8bit", "--lr-scale", "1=0.5",
        ], console);
        Assert.True(exit == 0, text.ToString());
        var rows = File.ReadAllLines(dir.File("out/results.csv"));
        Assert.Equal(3, rows.Length);
        Assert.StartsWith("teal-diamond,diamond,false,ti,,0,an image of a {V} at the top on the grass,2,0,", rows[1]);
        Assert.StartsWith("teal-diamond,diamond,false,ti,,1,a picture of a small {V} next to a blue heart on a yellow background,4,0,", rows[2]);
        Assert.True(File.Exists(dir.File("out/grid-teal-diamond.png")));
        Assert.Contains("teal-diamond (diamond)", File.ReadAllText(dir.File("out/summary.md")));
        Assert.Contains("AdamW moments in 8 bits", File.ReadAllText(dir.File("out/summary.md")));
        Assert.Contains("stage 1's learning rate × 0.5", File.ReadAllText(dir.File("out/summary.md")));
        using (var json = JsonDocument.Parse(File.ReadAllText(dir.File("out/results.json"))))
        {
            var settings = json.RootElement.GetProperty("settings");
            Assert.Equal(0.5, settings.GetProperty("learning_rate_scales").GetProperty("1").GetDouble());
            var stage1 = settings.GetProperty("methods")[0].GetProperty("plan").GetProperty("stage1");
            Assert.Equal(StagePlan.TextualInversionLearningRate * 0.5, stage1.GetProperty("learning_rate").GetDouble(), 12);
        }
        Assert.Contains("1 cell(s) run, 0 reused", text.ToString());
    }

    [Fact]
    public void LearningRateScalesMultiplyTheNamedStagesOfEveryPlanAndNothingElse()
    {
        var plain = Options("out") with { Methods = [PersonalizationMethod.AttnDreamBooth, PersonalizationMethod.TextualInversionDreamBooth] };
        var scaled = plain with { LearningRateScales = AttnDreamBooth.Cli.ShapesExperimentCommand.ParseLearningRateScales("2=0.1, 3=2") };
        foreach (var method in plain.Methods)
        {
            var a = plain.PlanFor(method);
            var b = scaled.PlanFor(method);
            Assert.Equal(a.Stage1, b.Stage1);
            Assert.Equal(a.Stage2 with { LearningRate = a.Stage2.LearningRate * 0.1 }, b.Stage2);
            Assert.Equal(a.Stage3 with { LearningRate = a.Stage3.LearningRate * 2 }, b.Stage3);
        }
        scaled.Validate();
        Assert.Throws<ArgumentOutOfRangeException>(() => (plain with { LearningRateScales = new Dictionary<TrainingStage, double> { [TrainingStage.CrossAttention] = 0 } }).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => (plain with { LearningRateScales = new Dictionary<TrainingStage, double> { [(TrainingStage)7] = 1 } }).Validate());
        foreach (string bad in new[] { "2", "4=1", "2=0", "2=x", "2=0.1,2=0.2", "0=1", "2=1e9" })
            Assert.Throws<ArgumentException>(() => AttnDreamBooth.Cli.ShapesExperimentCommand.ParseLearningRateScales(bad));
    }

    [Fact]
    public async Task AConceptThatNoPromptCanShowIsRefusedBeforeAnythingIsWritten()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var options = Options(dir.File("out")) with
        {
            Concepts = [ConceptSpec.Load(Path.Combine(TestPaths.RepoRoot, "samples", "concepts", "harlequin-star.json"), World)],
            Prompts = [ConceptPrompts.Parse("a photo of a {V} on a black background", World)],
        };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => PersonalizationExperiment.RunAsync(options));
        Assert.Contains("'harlequin-star' lacks contrast with the background of every prompt", e.Message);
        Assert.False(Directory.Exists(dir.File("out")));
    }

    [Fact]
    public async Task ABadPromptFileIsReportedWithItsLineBeforeAnythingIsTrained()
    {
        using var dir = TestPaths.CreateTempDirectory();
        File.WriteAllText(dir.File("p.txt"), "a photo of a {V} on the beach\na photo of a {V} on the moon\n");
        var (console, text) = CapturedConsole.Create();
        int exit = await CliApp.RunAsync(["shapes", "experiment", "--prompts", dir.File("p.txt"), "--out", dir.File("out"), "--model", ShapesModel], console);
        Assert.Equal(2, exit);
        Assert.Contains($"{dir.File("p.txt")}:2", text.ToString());
        Assert.False(Directory.Exists(dir.File("out")));
    }
}
