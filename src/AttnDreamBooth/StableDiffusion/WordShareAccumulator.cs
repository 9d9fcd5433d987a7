using AttnDreamBooth.Models.Attention;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>
/// Sums, per layer resolution, the share of the prompt words' cross-attention that each heatmap token receives: at every
/// pixel the token's probability (mean over heads) divided by the summed probability of all words, averaged over the
/// pixels. The maps it reads hold the heatmap tokens' columns first, then one column per word.
/// </summary>
internal sealed class WordShareAccumulator
{
    private readonly int _tokens;
    private readonly int _words;
    private readonly bool[] _isWord;
    private readonly SortedDictionary<int, (double[,] Sum, int Count)> _byHeight = new(AttentionHeatmaps.DescendingHeights);

    /// <param name="tokenPositions">The heatmap tokens' positions in the prompt.</param>
    /// <param name="wordPositions">The positions of the prompt's words.</param>
    public WordShareAccumulator(IReadOnlyList<int> tokenPositions, IReadOnlyList<int> wordPositions)
    {
        _tokens = tokenPositions.Count;
        _words = wordPositions.Count;
        // A token outside the words (e.g. one only the end token stands for) has no share of them.
        _isWord = tokenPositions.Select(wordPositions.Contains).ToArray();
    }

    /// <summary>Adds one layer's conditional probabilities <c>[B, heads, h·w, tokens + words]</c>.</summary>
    public void Add(Tensor probabilities, int height)
    {
        if (_tokens == 0 || _words == 0) return;
        using var scope = NewDisposeScope();
        var p = probabilities.detach().to_type(ScalarType.Float64).mean([1]);
        var words = p.narrow(-1, _tokens, _words).sum([-1], keepdim: true).clamp_min(Kept(1e-30));
        var shares = p.narrow(-1, 0, _tokens).div(words).mean([1]).cpu();
        int batch = (int)shares.shape[0];
        var values = shares.contiguous().data<double>().ToArray();
        if (!_byHeight.TryGetValue(height, out var entry)) entry = (new double[batch, _tokens], 0);
        for (int b = 0; b < batch; b++)
        {
            for (int k = 0; k < _tokens; k++) entry.Sum[b, k] += values[b * _tokens + k];
        }
        _byHeight[height] = (entry.Sum, entry.Count + 1);
    }

    /// <summary>Image <paramref name="row"/>'s share for heatmap token <paramref name="token"/>, by layer grid height
    /// (largest first); empty when the token is not one of the words.</summary>
    public IReadOnlyDictionary<int, double> Shares(int row, int token)
    {
        var result = new SortedDictionary<int, double>(AttentionHeatmaps.DescendingHeights);
        if (!_isWord[token]) return result;
        foreach (var (height, (sum, count)) in _byHeight) result[height] = sum[row, token] / count;
        return result;
    }
}
