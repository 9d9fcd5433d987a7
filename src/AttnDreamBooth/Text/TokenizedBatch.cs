using TorchSharp;

namespace AttnDreamBooth.Text;

/// <summary>A batch of tokenized prompts, padded to a common length.</summary>
/// <param name="InputIds">Token ids [batch, length]: BOS, the prompt's ids, EOS, then the pad id.</param>
/// <param name="AttentionMask">1 for BOS, prompt and EOS positions, 0 for padding [batch, length].</param>
/// <param name="Lengths">The number of real (unpadded) ids of each row, BOS and EOS included.</param>
internal sealed record TokenizedBatch(long[,] InputIds, long[,] AttentionMask, IReadOnlyList<int> Lengths)
{
    /// <summary>The number of rows.</summary>
    public int BatchSize => InputIds.GetLength(0);

    /// <summary>The padded length of every row.</summary>
    public int SequenceLength => InputIds.GetLength(1);

    /// <summary><see cref="InputIds"/> as an int64 tensor [batch, length] on <paramref name="device"/> (CPU by default).</summary>
    public torch.Tensor InputIdsTensor(torch.Device? device = null) => ToTensor(InputIds, device);

    /// <summary><see cref="AttentionMask"/> as an int64 tensor [batch, length] on <paramref name="device"/> (CPU by default).</summary>
    public torch.Tensor AttentionMaskTensor(torch.Device? device = null) => ToTensor(AttentionMask, device);

    private static torch.Tensor ToTensor(long[,] values, torch.Device? device)
    {
        var tensor = torch.tensor(values, dtype: torch.int64);
        return device is null || device.type == DeviceType.CPU ? tensor : tensor.to(device);
    }
}
