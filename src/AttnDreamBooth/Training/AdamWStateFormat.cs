namespace AttnDreamBooth.Training;

/// <summary>How an AdamW optimizer stores its two moments.</summary>
public enum AdamWStateFormat
{
    /// <summary>float32 moments: 8 bytes per trained parameter (PyTorch's AdamW).</summary>
    Float32,

    /// <summary>
    /// 8-bit block-wise quantized moments, as bitsandbytes' 8-bit Adam: per block of 256 elements one float32 scale (the
    /// block's absolute maximum) and one byte per element indexing a dynamic quantization map (signed for the first
    /// moment, unsigned for the second): about 2.03 bytes per trained parameter. Tensors with fewer than 4,096 elements
    /// (biases, norms) keep float32 moments, as bitsandbytes does. The update itself is computed in float32 from the
    /// dequantized moments; only what is stored between steps is quantized.
    /// </summary>
    BlockwiseInt8,
}
