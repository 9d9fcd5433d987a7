using System.Globalization;
using AttnDreamBooth.Personalization;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>
/// Shows a training run: one bar per stage with step x/N, loss and seconds per step, an overall bar with the remaining time,
/// and a summary at the end. Redirected output gets plain lines instead (about ten per stage, always the stage's last step),
/// so a log shows the run moving and ending at 100 %. A resumed run shows the stages it finished before as complete.
/// </summary>
internal sealed class TrainingDisplay
{
    private readonly StagePlan _plan;
    private readonly Dictionary<TrainingStage, double> _lastLoss = [];
    private readonly Dictionary<TrainingStage, int> _lastShown = [];
    private TrainingProgress? _first;
    private TrainingProgress? _last;

    private TrainingDisplay(StagePlan plan) => _plan = plan;

    /// <summary>Runs <paramref name="work"/> under the display of <paramref name="plan"/> and prints the summary.</summary>
    public static async Task<T> RunAsync<T>(IAnsiConsole console, StagePlan plan, Func<IProgress<TrainingProgress>, Task<T>> work)
    {
        var display = new TrainingDisplay(plan);
        T result = default!;
        if (!console.Profile.Capabilities.Interactive)
        {
            result = await work(new SynchronousProgress<TrainingProgress>(p => display.WriteLine(console, p)));
        }
        else
        {
            await console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    var tasks = plan.EnabledStages.ToDictionary(s => s, s => ctx.AddTask(display.Label(s, 0, null).EscapeMarkup(), maxValue: plan[s].Steps));
                    var total = ctx.AddTask(display.TotalLabel(null).EscapeMarkup(), maxValue: Math.Max(1, plan.TotalSteps));
                    result = await work(new SynchronousProgress<TrainingProgress>(p =>
                    {
                        display.Record(p);
                        // A resumed run starts in the middle: the stages before the current one are done.
                        foreach (var (stage, task) in tasks)
                        {
                            if (stage < p.Stage) task.Value = task.MaxValue;
                        }
                        var current = tasks[p.Stage];
                        current.Value = p.Step;
                        current.Description = display.Label(p.Stage, p.Step, p.Loss).EscapeMarkup();
                        total.Value = p.GlobalStep;
                        total.Description = display.TotalLabel(p).EscapeMarkup();
                    }));
                });
        }
        foreach (string line in display.Summary()) console.Profile.Out.Writer.WriteLine(TerminalText.Safe(line));
        console.Profile.Out.Writer.Flush();
        return result;
    }

    /// <summary>A stage's label, the same width before and after the loss is known.</summary>
    internal string Label(TrainingStage stage, int step, double? loss)
    {
        int steps = _plan[stage].Steps;
        int width = steps.ToString(CultureInfo.InvariantCulture).Length;
        string lossText = loss is { } l ? l.ToString("F4", CultureInfo.InvariantCulture) : "  –   ";
        string perStep = SecondsPerStep() is { } s ? $"{s,6:F2} s/step" : "   – s/step";
        return $"stage {(int)stage} {stage.DisplayName(),-14} step {step.ToString(CultureInfo.InvariantCulture).PadLeft(width)}/{steps}  loss {lossText}  {perStep}";
    }

    private string TotalLabel(TrainingProgress? p) =>
        $"all stages {"",-6}   step {(p?.GlobalStep ?? 0).ToString(CultureInfo.InvariantCulture).PadLeft(_plan.TotalSteps.ToString(CultureInfo.InvariantCulture).Length)}/{_plan.TotalSteps}  ETA {Eta(p)}";

    private void Record(TrainingProgress p)
    {
        _first ??= p;
        _last = p;
        _lastLoss[p.Stage] = p.Loss;
    }

    /// <summary>One line per about a tenth of a stage, and always the stage's last step.</summary>
    internal void WriteLine(IAnsiConsole console, TrainingProgress p)
    {
        Record(p);
        int every = Math.Max(1, p.StageSteps / 10);
        int shown = _lastShown.GetValueOrDefault(p.Stage);
        if (p.Step != p.StageSteps && p.Step - shown < every) return;
        _lastShown[p.Stage] = p.Step;
        double percent = p.StageSteps == 0 ? 100 : 100.0 * p.Step / p.StageSteps;
        var writer = console.Profile.Out.Writer;
        writer.WriteLine($"{Label(p.Stage, p.Step, p.Loss)}  {percent,3:F0} %  total {p.GlobalStep}/{p.TotalSteps}  ETA {Eta(p)}");
        writer.Flush();
    }

    /// <summary>Seconds per optimizer step over this session's steps (a resumed run counts from where it resumed).</summary>
    private double? SecondsPerStep()
    {
        if (_first is null || _last is null) return null;
        int steps = _last.GlobalStep - _first.GlobalStep + 1;
        return steps > 0 ? _last.Elapsed.TotalSeconds / steps : null;
    }

    private static string Eta(TrainingProgress? p) =>
        p is null ? "–" : p.GlobalStep >= p.TotalSteps ? "0:00:00" : p.EstimatedRemaining is { } r ? Clock(r) : "–";

    private static string Clock(TimeSpan t) => $"{(int)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}";

    /// <summary>What the run did: steps, time, seconds per step and the last loss of each stage.</summary>
    internal IEnumerable<string> Summary()
    {
        if (_first is null || _last is null)
        {
            yield return "trained no steps (every stage was already done in the checkpoint resumed from)";
            yield break;
        }
        int steps = _last.GlobalStep - _first.GlobalStep + 1;
        string resumed = _first.GlobalStep > 1 ? $" (resumed at step {_first.GlobalStep})" : "";
        yield return $"trained {steps} steps in {Clock(_last.Elapsed)}{resumed}, {SecondsPerStep():F2} s/step; last loss: "
            + string.Join(", ", _lastLoss.Select(kv => $"stage {(int)kv.Key} {kv.Key.DisplayName()} {kv.Value.ToString("F4", CultureInfo.InvariantCulture)}"));
    }
}
