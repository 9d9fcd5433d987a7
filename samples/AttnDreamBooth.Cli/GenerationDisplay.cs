using AttnDreamBooth.StableDiffusion;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>
/// Shows generation progress: a live bar on an interactive console; on redirected output, plain lines (about ten per
/// run, always including the last step) so logs show the run moving and ending.
/// </summary>
internal static class GenerationDisplay
{
    public static async Task<T> RunAsync<T>(IAnsiConsole console, string label, Func<IProgress<GenerationProgress>, Task<T>> run)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            int lastShown = 0;
            var lines = new SynchronousProgress<GenerationProgress>(p =>
            {
                int every = Math.Max(1, p.TotalSteps / 10);
                if (p.Step != p.TotalSteps && p.Step - lastShown < every) return;
                lastShown = p.Step;
                console.MarkupLineInterpolated($"  {label}: step {p.Step}/{p.TotalSteps} ({p.Fraction:P0})");
            });
            return await run(lines);
        }

        T result = default!;
        await console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(label.EscapeMarkup(), maxValue: 1);
                var progress = new SynchronousProgress<GenerationProgress>(p =>
                {
                    task.MaxValue = p.TotalSteps;
                    task.Value = p.Step;
                    task.Description = $"{label} step {p.Step}/{p.TotalSteps}".EscapeMarkup();
                });
                result = await run(progress);
            });
        return result;
    }
}
