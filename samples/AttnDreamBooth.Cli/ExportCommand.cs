using System.CommandLine;
using System.Globalization;
using AttnDreamBooth.Personalization;
using Spectre.Console;
using TorchSharp;

namespace AttnDreamBooth.Cli;

/// <summary><c>export</c>: writes a concept for diffusers, AUTOMATIC1111 and ComfyUI (see docs/export.md).</summary>
internal static class ExportCommand
{
    private static readonly Dictionary<string, ConceptExportFormat> Formats = new(StringComparer.Ordinal)
    {
        ["diffusers"] = ConceptExportFormat.Diffusers,
        ["single-file"] = ConceptExportFormat.SingleFile,
        ["embedding"] = ConceptExportFormat.Embedding,
        ["lora"] = ConceptExportFormat.Lora,
    };

    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string>("--model")
        {
            Description = "The base model the concept was trained on: a diffusers folder or a .safetensors single file (with --model-config).",
            Required = true,
        };
        var modelConfig = CliApp.ModelConfigOption();
        var concept = new Option<string>("--concept")
        {
            Description = "A concept folder written by train, or a concept made elsewhere: a folder with learned_embeds.safetensors (+ unet/) or an embedding file.",
            Required = true,
        };
        var output = new Option<string>("--out") { Description = "The export folder.", Required = true };
        var format = new Option<string>("--format")
        {
            Description = "diffusers: a pipeline folder for from_pretrained; single-file: an A1111/ComfyUI checkpoint + embedding; " +
                          "embedding: the A1111/ComfyUI embedding alone; lora: a kohya LoRA of the U-Net + embedding.",
            DefaultValueFactory = _ => "diffusers",
        };
        format.AcceptOnlyFromAmong([.. Formats.Keys]);
        var dtype = new Option<string>("--dtype") { Description = "Type of the written network weights: fp32, fp16 or bf16.", DefaultValueFactory = _ => "fp32" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16");
        var rank = new Option<string>("--rank")
        {
            Description = "LoRA rank: a positive number, or full (the wrapped layers' fine-tuning exactly; see README.txt for what a LoRA cannot hold).",
            DefaultValueFactory = _ => ConceptExportOptions.DefaultLoraRank.ToString(CultureInfo.InvariantCulture),
        };
        rank.Validators.Add(result =>
        {
            string? value = result.GetValueOrDefault<string>();
            if (value != "full" && !(int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0))
                result.AddError($"--rank must be a positive whole number or 'full'; got '{value}'.");
        });
        var trigger = new Option<string?>("--trigger") { Description = "Trigger word of the embedding file (its file name; default: the concept's token)." };
        var category = new Option<string?>("--category") { Description = "Category word of an imported concept (concept folders written by train have their own)." };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty output folder." };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N.", DefaultValueFactory = _ => "cpu" };
        var command = new Command("export", "Write a concept for diffusers, AUTOMATIC1111 or ComfyUI (with README.txt).")
        {
            model, concept, output, format, dtype, rank, trigger, category, force, device, modelConfig,
        };
        command.SetAction((parse, ct) => CliApp.Guarded(console, async () =>
        {
            var options = new ConceptExportOptions
            {
                Format = Formats[parse.GetValue(format)!],
                WeightsDType = parse.GetValue(dtype) switch
                {
                    "fp16" => torch.ScalarType.Float16,
                    "bf16" => torch.ScalarType.BFloat16,
                    _ => torch.ScalarType.Float32,
                },
                LoraRank = parse.GetValue(rank) is "full" ? null : int.Parse(parse.GetValue(rank)!, CultureInfo.InvariantCulture),
                TriggerWord = parse.GetValue(trigger),
                Overwrite = parse.GetValue(force),
            };
            // Checked before the model is loaded: a typo should not cost a model load.
            options.Validate();
            using var logging = CliLogging.For(console, parse);
            string deviceName = CliInput.Device(parse.GetValue(device)!);
            using var pipeline = CliInput.Model(parse.GetValue(model)!, parse.GetValue(modelConfig), logging).OnDevice(deviceName)
                .WithResourceLimits(CliLimits.From(parse)).Build(ct);
            var loaded = await ConceptSources.LoadAsync(parse.GetValue(concept)!, pipeline, parse.GetValue(category), lora: null, loraScale: 1, ct);
            string? shown = null;
            var progress = new SynchronousProgress<ConceptExportProgress>(p =>
            {
                if (p.Stage == shown) return;
                shown = p.Stage;
                console.MarkupLineInterpolated($"  {p.Stage}");
            });
            var result = await loaded.ExportAsync(parse.GetValue(output)!, options, progress, ct);
            console.MarkupLineInterpolated($"[green]Exported[/] '{TerminalText.Safe(loaded.Token)}' ({parse.GetValue(format)}) to {TerminalText.Safe(result.Folder)}: {result.Files.Count} files, {result.TotalBytes / 1e6:F1} MB.");
            foreach (var (path, bytes) in result.Files.Where(f => !f.Key.Contains('/')))
                console.MarkupLineInterpolated($"  {TerminalText.Safe(path)} ({bytes / 1e6:F2} MB)");
            if (result.Lora is { } lora)
            {
                console.MarkupLineInterpolated($"  LoRA: {lora.LayerCount} layers, largest relative weight error {lora.MaxRelativeError:G3}; {lora.NotCarried.Count} other changed tensors not carried (largest relative change {lora.MaxNotCarriedRelativeChange:G3}).");
            }
            console.MarkupLineInterpolated($"Trigger word: {TerminalText.Safe(result.TriggerWord)}; how to load it: {TerminalText.Safe(Path.Combine(result.Folder, "README.txt"))}");
            return 0;
        }, parse));
        return command;
    }
}
