using System.Globalization;
using AttnDreamBooth.Personalization;
using static TorchSharp.torch;

namespace AttnDreamBooth.Benchmarks.Training;

/// <summary>
/// One row of the training memory table: a stage at a latent size with a combination of the pipeline's memory options.
/// Its id reads <c>Stage@latent[+ckpt][+bf16][+8bit]</c>, e.g. <c>FullUNet@64+ckpt+8bit</c>.
/// </summary>
internal sealed record MemoryTableRow(BenchmarkStage Stage, int Latent, bool Checkpointing, bool Bf16FrozenWeights, bool EightBitStates)
{
    public string Id =>
        $"{Stage}@{Latent.ToString(CultureInfo.InvariantCulture)}{(Checkpointing ? "+ckpt" : "")}{(Bf16FrozenWeights ? "+bf16" : "")}{(EightBitStates ? "+8bit" : "")}";

    /// <summary>The options as the pipeline takes them.</summary>
    public TrainingOptions Options => new()
    {
        GradientCheckpointing = Checkpointing,
        FrozenWeightsDType = Bf16FrozenWeights ? ScalarType.BFloat16 : null,
        EightBitOptimizerStates = EightBitStates,
    };

    public static MemoryTableRow Parse(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        var parts = id.Split('+');
        var head = parts[0].Split('@');
        if (head.Length != 2 || !Enum.TryParse(head[0], out BenchmarkStage stage) || !Enum.IsDefined(stage)
            || !int.TryParse(head[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int latent) || latent < 8)
            throw new ArgumentException($"Row id '{id}' is not Stage@latent[+ckpt][+bf16][+8bit] (stages: {string.Join(", ", Enum.GetNames<BenchmarkStage>())}).", nameof(id));
        var flags = parts.Skip(1).ToArray();
        var unknown = flags.Except(["ckpt", "bf16", "8bit"]).ToArray();
        if (unknown.Length > 0) throw new ArgumentException($"Row id '{id}': unknown option(s) {string.Join(", ", unknown)} (ckpt, bf16, 8bit).", nameof(id));
        var row = new MemoryTableRow(stage, latent, flags.Contains("ckpt"), flags.Contains("bf16"), flags.Contains("8bit"));
        if (!row.IsApplicable) throw new ArgumentException($"Row id '{id}' combines options the pipeline does not apply to that stage.", nameof(id));
        return row;
    }

    /// <summary>
    /// Whether the combination does something the pipeline applies: frozen half-precision weights need frozen U-Net
    /// weights (not the full stage 3, which <see cref="TrainingMemoryPlan.CastFrozenUNet"/> leaves float32); 8-bit states
    /// need moments worth quantizing — stage 1's concept rows are under the quantization threshold (the setting changes
    /// nothing there), and the LoRA stages' moments are 3.3 / 13.2 MiB at rank 4 (at most 10 MiB to save, under the
    /// resident set's noise).
    /// </summary>
    public bool IsApplicable =>
        !(Bf16FrozenWeights && Stage == BenchmarkStage.FullUNet)
        && !(EightBitStates && Stage is not (BenchmarkStage.CrossAttention or BenchmarkStage.FullUNet));

    /// <summary>Every applicable row, in sweep order: per latent size, the rows behind the targets and the most-used
    /// settings first, so an interrupted sweep has measured those.</summary>
    public static IReadOnlyList<MemoryTableRow> All(IEnumerable<int> latents)
    {
        var rows = new List<MemoryTableRow>();
        foreach (int latent in latents)
        {
            var first = new[]
            {
                new MemoryTableRow(BenchmarkStage.FullUNet, latent, true, false, true),
                new MemoryTableRow(BenchmarkStage.CrossAttention, latent, true, true, false),
                new MemoryTableRow(BenchmarkStage.FullUNet, latent, false, false, false),
                new MemoryTableRow(BenchmarkStage.CrossAttention, latent, false, false, false),
                new MemoryTableRow(BenchmarkStage.LoraUNet, latent, true, true, false),
                new MemoryTableRow(BenchmarkStage.LoraUNet, latent, false, false, false),
                new MemoryTableRow(BenchmarkStage.LoraCrossAttention, latent, true, true, false),
                new MemoryTableRow(BenchmarkStage.TextEmbedding, latent, true, true, false),
            };
            rows.AddRange(first);
            foreach (var stage in new[] { BenchmarkStage.FullUNet, BenchmarkStage.CrossAttention, BenchmarkStage.LoraUNet, BenchmarkStage.LoraCrossAttention, BenchmarkStage.TextEmbedding })
            {
                foreach (bool eightBit in new[] { false, true })
                foreach (bool bf16 in new[] { false, true })
                foreach (bool ckpt in new[] { false, true })
                {
                    var row = new MemoryTableRow(stage, latent, ckpt, bf16, eightBit);
                    if (row.IsApplicable && !rows.Contains(row)) rows.Add(row);
                }
            }
        }
        return rows;
    }
}
