using System.CommandLine;
using AttnDreamBooth.Shapes.Pretraining;
using Spectre.Console;

namespace AttnDreamBooth.Cli;

/// <summary><c>shapes export</c>: writes a model folder from a pretraining checkpoint, e.g. to look at a run before it ends.</summary>
internal static class ShapesExportCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "A checkpoint folder, or a run's checkpoints/ folder (its newest checkpoint).", Required = true };
        var output = new Option<string>("--out") { Description = "The model folder to write.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = $"CLIP tokenizer folder (default: the repository's {ShapesPretrainCommand.TokenizerFolder})." };
        var incomplete = new Option<bool>("--allow-incomplete") { Description = "Export a checkpoint from the middle of the U-Net phase." };
        var last = new Option<bool>("--last-weights")
        {
            Description = "For a run that keeps a weight average (unet_ema_decay > 0): export the text encoder's and U-Net's last weights instead of the average.",
        };
        var command = new Command("export", "Write a diffusers model folder (fp16, with manifest) from a pretraining checkpoint.") { checkpoint, output, tokenizer, incomplete, last };
        command.SetAction((parse, ct) => CliApp.Guarded(console, () =>
        {
            string tokenizerFolder = parse.GetValue(tokenizer) ?? Path.Combine(ShapesPretrainCommand.FindRepoRoot(), ShapesPretrainCommand.TokenizerFolder);
            var files = ShapesModelExporter.Export(parse.GetValue(checkpoint)!, tokenizerFolder, parse.GetValue(output)!, allowIncomplete: parse.GetValue(incomplete),
                lastWeights: parse.GetValue(last));
            console.MarkupLineInterpolated($"[green]Exported[/] {TerminalText.Safe(parse.GetValue(output)!)}: {files.Count} files, {files.Sum(f => f.Bytes) / 1e6:F1} MB.");
            return Task.FromResult(0);
        }));
        return command;
    }
}
