using System.Collections.Immutable;

namespace AttnDreamBooth.Text;

/// <summary>An immutable snapshot of the added tokens and of every literal split out of raw text before cleaning
/// (special and added tokens). <see cref="ClipTokenizer.AddToken"/> swaps in a new snapshot, so encoders never lock.</summary>
internal sealed class AddedTokenTable
{
    public static readonly AddedTokenTable Empty = new(ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal), [], ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal));

    private readonly ImmutableDictionary<string, int> _ids;
    private readonly ImmutableDictionary<string, int> _literals;
    private readonly string[] _literalsLongestFirst;

    private AddedTokenTable(ImmutableDictionary<string, int> ids, ImmutableList<string> tokens, ImmutableDictionary<string, int> literals)
    {
        _ids = ids;
        Tokens = tokens;
        _literals = literals;
        _literalsLongestFirst = literals.Keys.OrderByDescending(k => k.Length).ThenBy(k => k, StringComparer.Ordinal).ToArray();
    }

    public IReadOnlyList<string> Tokens { get; }

    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);

    public AddedTokenTable With(string token, int id) =>
        new(_ids.SetItem(token, id), ((ImmutableList<string>)Tokens).Add(token), _literals.SetItem(token, id));

    /// <summary>Registers literals that are split out but are not added tokens (special tokens of vocab.json).</summary>
    public AddedTokenTable WithSplitLiterals(IEnumerable<(string Token, int Id)> literals) =>
        new(_ids, (ImmutableList<string>)Tokens, literals.Aggregate(_literals, (acc, t) => acc.SetItem(t.Token, t.Id)));

    /// <summary>Cuts <paramref name="text"/> into pieces: (start, length, id) for a literal, (start, length, -1) for the
    /// text between literals. At each position the earliest, then longest, literal wins (transformers' trie split).</summary>
    public IEnumerable<(int Start, int Length, int Id)> Split(string text)
    {
        int plainStart = 0;
        int i = 0;
        while (i < text.Length)
        {
            string? hit = null;
            foreach (string literal in _literalsLongestFirst)
            {
                if (i + literal.Length <= text.Length && string.CompareOrdinal(text, i, literal, 0, literal.Length) == 0)
                {
                    hit = literal;
                    break;
                }
            }
            if (hit is null)
            {
                i++;
                continue;
            }
            if (i > plainStart) yield return (plainStart, i - plainStart, -1);
            yield return (i, hit.Length, _literals[hit]);
            i += hit.Length;
            plainStart = i;
        }
        if (text.Length > plainStart) yield return (plainStart, text.Length - plainStart, -1);
    }
}
