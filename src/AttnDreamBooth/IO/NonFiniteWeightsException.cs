namespace AttnDreamBooth.IO;

/// <summary>A weight file holds NaN or infinite values. Such weights load without complaint into a module, and every
/// image made with them is black, so they are refused when read (see <see cref="StateDictLoadOptions.CheckFinite"/>).</summary>
public sealed class NonFiniteWeightsException : AttnDreamBoothException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="source">The file(s), as text.</param>
    /// <param name="tensorNames">The tensors holding a NaN or infinite value.</param>
    public NonFiniteWeightsException(string source, IReadOnlyList<string> tensorNames)
        : base($"{source}: {tensorNames.Count} tensor(s) hold NaN or infinite values: " +
               string.Join(", ", tensorNames.Take(10).Select(n => $"'{n}'")) + (tensorNames.Count > 10 ? $", … and {tensorNames.Count - 10} more" : "") +
               ". The file is corrupt or came from a diverged training run.")
    {
        WeightSource = source;
        TensorNames = tensorNames;
    }

    /// <summary>The weight file(s), as text.</summary>
    public string WeightSource { get; }

    /// <summary>Every tensor that holds a non-finite value.</summary>
    public IReadOnlyList<string> TensorNames { get; }
}
