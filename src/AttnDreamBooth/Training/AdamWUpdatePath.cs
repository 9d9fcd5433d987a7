namespace AttnDreamBooth.Training;

/// <summary>Which implementation computes the AdamW arithmetic (the optimizer uses <see cref="OnePass"/>; the others
/// exist for tests and benchmarks).</summary>
internal enum AdamWUpdatePath
{
    /// <summary>The C# kernel on the CPU where the layouts allow, the fewest tensor operations elsewhere.</summary>
    OnePass,

    /// <summary>The tensor-operation fallback of <see cref="OnePass"/> everywhere, also on the CPU.</summary>
    TensorOps,

    /// <summary>The original nine-operation sequence (<see cref="AdamWMultiOpUpdate"/>), the reference.</summary>
    MultiOp,
}
