namespace AttnDreamBooth.IO;

/// <summary>A component only offers pickle-based weights (<c>.bin</c>, <c>.ckpt</c>, <c>.pt</c>, <c>.pth</c>), which are
/// refused: unpickling can execute arbitrary code. Convert them to safetensors with a trusted tool first.</summary>
public sealed class UnsafeWeightsFormatException : AttnDreamBoothException
{
    /// <summary>Creates the exception for <paramref name="filePath"/>.</summary>
    public UnsafeWeightsFormatException(string filePath)
        : base($"'{filePath}' is a Python pickle checkpoint. Pickles can execute arbitrary code when loaded, so AttnDreamBooth " +
               "never reads them. Convert the model to .safetensors (for example with diffusers' save_pretrained(safe_serialization=True)) " +
               "or download the safetensors variant of the model.")
    {
        FilePath = filePath;
    }

    /// <summary>The refused file.</summary>
    public string FilePath { get; }
}
