namespace AttnDreamBooth.Models.Lora;

/// <summary>Internal construction of networks filled adapter by adapter (file loading, extraction).</summary>
internal static class LoraNetworkFactory
{
    public static LoraNetwork Empty(TorchSharp.torch.nn.Module? unet, TorchSharp.torch.nn.Module? textEncoder) =>
        LoraNetwork.Create(unet, textEncoder, [], new LoraOptions());
}
