using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Clip;

/// <summary>Token and learned position embeddings (<c>embeddings</c>: <c>token_embedding</c>, <c>position_embedding</c>).
/// Position ids are always <c>0 .. T-1</c>, so the <c>position_ids</c> buffer older files store is not needed.</summary>
internal sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Embedding token_embedding;
    private readonly Embedding position_embedding;

    public ClipTextEmbeddings(ClipTextConfig config, Device? device) : base("embeddings")
    {
        token_embedding = nn.Embedding(config.VocabSize, config.HiddenSize, device: device);
        position_embedding = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize, device: device);
        RegisterComponents();
    }

    public Embedding TokenEmbedding => token_embedding;

    public long MaxPositions => position_embedding.weight!.shape[0];


    /// <summary>Adds position embeddings to token embeddings <paramref name="inputsEmbeds"/> [B, T, C].</summary>
    public override Tensor forward(Tensor inputsEmbeds)
    {
        using var scope = torch.NewDisposeScope();
        long length = inputsEmbeds.shape[1];
        var positions = torch.arange(Kept(0), Kept(length), Kept(1), dtype: ScalarType.Int64, device: inputsEmbeds.device);
        return (inputsEmbeds.add(position_embedding.call(positions).unsqueeze(0), One)).MoveToOuterDisposeScope();
    }
}
