using System.Collections.Immutable;

namespace AttnDreamBooth.Text;

/// <summary>An immutable snapshot of the added tokens and of every literal split out of raw text before cleaning
/// (special and added tokens). <see cref="ClipTokenizer.AddToken"/> swaps in a new snapshot, so encoders never lock.</summary>
/// <remarks>The literals live in a persistent character trie: adding one copies only the nodes on its path, and
/// splitting a text costs O(text length × longest literal) however many literals there are, so loading an embedding
/// file of n tokens stays linear in n.</remarks>
internal sealed class AddedTokenTable
{
    public static readonly AddedTokenTable Empty = new(ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal), [], TrieNode.Root);

    private readonly ImmutableDictionary<string, int> _ids;
    private readonly TrieNode _literals;

    private AddedTokenTable(ImmutableDictionary<string, int> ids, ImmutableList<string> tokens, TrieNode literals)
    {
        _ids = ids;
        Tokens = tokens;
        _literals = literals;
    }

    public IReadOnlyList<string> Tokens { get; }

    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);

    public AddedTokenTable With(string token, int id) =>
        new(_ids.SetItem(token, id), ((ImmutableList<string>)Tokens).Add(token), _literals.With(token, 0, id));

    /// <summary>Registers literals that are split out but are not added tokens (special tokens of vocab.json).</summary>
    public AddedTokenTable WithSplitLiterals(IEnumerable<(string Token, int Id)> literals) =>
        new(_ids, (ImmutableList<string>)Tokens, literals.Aggregate(_literals, (acc, t) => acc.With(t.Token, 0, t.Id)));

    /// <summary>Cuts <paramref name="text"/> into pieces: (start, length, id) for a literal, (start, length, -1) for the
    /// text between literals. At each position the earliest, then longest, literal wins (transformers' trie split).
    /// Lazy: a caller that stops early has paid only for the text it consumed (plus the plain run it is in).</summary>
    public IEnumerable<(int Start, int Length, int Id)> Split(string text)
    {
        int plainStart = 0;
        int i = 0;
        while (i < text.Length)
        {
            var (length, id) = _literals.LongestMatch(text, i);
            if (length == 0)
            {
                i++;
                continue;
            }
            if (i > plainStart) yield return (plainStart, i - plainStart, -1);
            yield return (i, length, id);
            i += length;
            plainStart = i;
        }
        if (text.Length > plainStart) yield return (plainStart, text.Length - plainStart, -1);
    }

    /// <summary>A node of the persistent literal trie; <see cref="Id"/> is -1 where no literal ends.</summary>
    private sealed class TrieNode
    {
        public static readonly TrieNode Root = new(ImmutableDictionary<char, TrieNode>.Empty, -1);

        private readonly ImmutableDictionary<char, TrieNode> _children;

        private TrieNode(ImmutableDictionary<char, TrieNode> children, int id)
        {
            _children = children;
            Id = id;
        }

        public int Id { get; }

        public TrieNode With(string literal, int index, int id)
        {
            if (index == literal.Length) return new TrieNode(_children, id);
            var child = _children.TryGetValue(literal[index], out var existing) ? existing : Root;
            return new TrieNode(_children.SetItem(literal[index], child.With(literal, index + 1, id)), Id);
        }

        public (int Length, int Id) LongestMatch(string text, int start)
        {
            var node = this;
            (int Length, int Id) best = (0, -1);
            for (int i = start; i < text.Length && node._children.TryGetValue(text[i], out var next); i++)
            {
                node = next;
                if (node.Id >= 0) best = (i - start + 1, node.Id);
            }
            return best;
        }
    }
}
