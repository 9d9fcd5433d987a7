using System.Text.RegularExpressions;
using AttnDreamBooth.Personalization;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary>
/// The CLI's one place for failures: the library's <see cref="AttnDreamBoothException"/> (bad input or state) and every
/// other error become one clear line and exit 2 (the stack trace only with <c>--verbose</c>); cancellation is exit 130
/// with where it stopped and how to resume.
/// </summary>
internal static class CliErrors
{
    public static async Task<int> GuardedAsync(IAnsiConsole console, Func<Task<int>> action, bool verbose, IReadOnlyList<string> args)
    {
        try
        {
            return await action();
        }
        catch (TrainingCancelledException cancelled)
        {
            string where = $"Cancelled at stage {cancelled.Stage} step {cancelled.StepInStage}";
            if (cancelled.CheckpointPath is null)
                console.MarkupLineInterpolated($"[yellow]{where}[/] (no checkpoint folder, nothing saved).");
            else
                console.Profile.Out.Writer.WriteLine($"{where}; resume with: {TerminalText.Safe(ResumeCommand(args))}");
            return 130;
        }
        catch (OperationCanceledException)
        {
            console.MarkupLine("[yellow]Cancelled.[/] Checkpoints written so far are kept.");
            return 130;
        }
        catch (AttnDreamBoothException ex)
        {
            // Bad input or state as the library sees it (a file, config, photo, token, plan or run): the message names it.
            return Report(console, ex, ex.Message, verbose);
        }
        catch (Exception ex)
        {
            // The CLI's own I/O and argument errors, and native TorchSharp errors: one line naming what is wrong as well.
            var inner = ex is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerExceptions[0] : ex;
            string message = inner is AttnDreamBooth.IO.TensorAllocationException ? inner.Message
                : inner is ArgumentOutOfRangeException { ParamName: { } name, ActualValue: { } actual } range
                ? $"{name} {Regex.Replace(range.Message, @"\s*\(Parameter '[^']*'\)[\s\S]*$", "")} (got {actual})"
                : inner is OutOfMemoryException or InsufficientExecutionStackException
                ? $"out of memory ({inner.Message}); lower the model size, batch size or resolution"
                : inner.Message;
            return Report(console, inner, message, verbose);
        }
    }

    private static int Report(IAnsiConsole console, Exception error, string message, bool verbose)
    {
        // Written raw: Spectre would wrap a long path over several lines at the console width.
        var writer = console.Profile.Out.Writer;
        writer.WriteLine($"error: {TerminalText.Safe(OneLine(message))}");
        writer.WriteLine(verbose ? error.ToString() : "(run with --verbose for details)");
        writer.Flush();
        return 2;
    }

    /// <summary>A message as one line, without .NET's argument suffix (<c>(Parameter 'x')</c>), which names a C#
    /// parameter the user never wrote.</summary>
    internal static string OneLine(string message) =>
        Regex.Replace(Regex.Replace(message, @"\s*\(Parameter '[^']*'\)", ""), @"\s+", " ").Trim();

    /// <summary>The same command line with <c>--resume</c> (added when missing).</summary>
    internal static string ResumeCommand(IReadOnlyList<string> args)
    {
        var parts = args.ToList();
        if (!parts.Contains("--resume")) parts.Add("--resume");
        return "AttnDreamBooth.Cli " + string.Join(' ', parts.Select(Quote));
    }

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsLetterOrDigit(c) || "-_./,:=@+".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''") + "'";
}
