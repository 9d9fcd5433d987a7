using System.Text;
using System.Text.Json;
using AttnDreamBooth.IO;
using Microsoft.ML.Tokenizers;
using TorchSharp;

namespace AttnDreamBooth.Text;

/// <summary>
/// The CLIP tokenizer of Stable Diffusion 1.x / 2.x, token for token what transformers' <c>CLIPTokenizer</c> produces,
/// composed on Microsoft.ML.Tokenizers' byte-level BPE model.
/// </summary>
/// <remarks>
/// <para>Pipeline: special and added tokens are split out of the raw text first (leftmost, longest match; they map
/// straight to their ids), every piece between them is cleaned by <see cref="ClipTextCleaner"/>, split into words by
/// <see cref="ClipPreTokenizer"/> and BPE-merged (<c>&lt;/w&gt;</c> marks the end of a word). <see cref="Encode(string)"/>
/// then adds BOS/EOS and truncates to <see cref="ModelMaxLength"/> keeping EOS; <see cref="EncodeBatch"/> pads with the
/// folder's pad token (SD 1.x: <c>&lt;|endoftext|&gt;</c>; SD 2.x: <c>!</c> = id 0, which, being special, also turns every
/// <c>!</c> in a prompt into id 0, as in the reference).</para>
/// <para>All members are safe to call concurrently, <see cref="AddToken"/> included.</para>
/// </remarks>
public sealed class ClipTokenizer
{
    /// <summary>The number of merges transformers reads from <c>merges.txt</c> (CLIP's <c>49152 - 256 - 2</c>).</summary>
    public const int MaxMerges = 49152 - 256 - 2;

    private readonly Dictionary<string, int> _vocabulary;
    private readonly string[] _idToToken;
    private readonly HashSet<int> _specialIds;
    private readonly bool _cleanUpSpaces;
    private readonly int _longestTokenChars;
    private readonly object _addLock = new();
    private volatile AddedTokenTable _added;

    private ClipTokenizer(BpeTokenizer model, Dictionary<string, int> vocabulary, ClipTokenizerFolder folder)
    {
        Model = model;
        _vocabulary = vocabulary;
        BaseVocabularySize = vocabulary.Count;
        _idToToken = new string[vocabulary.Values.Max() + 1];
        foreach (var (token, id) in vocabulary) _idToToken[id] = token;
        _cleanUpSpaces = folder.CleanUpTokenizationSpaces;
        _longestTokenChars = Math.Max(1, vocabulary.Keys.Max(k => k.Length));
        ModelMaxLength = folder.ModelMaxLength;
        if (ModelMaxLength < 2)
            throw new ModelConfigException(Path.Combine(folder.Folder, ClipTokenizerFolder.TokenizerConfigFile), "model_max_length", "must leave room for BOS and EOS");

        _added = AddedTokenTable.Empty;
        foreach (var (id, token, special) in folder.AddedTokens)
        {
            if (id < BaseVocabularySize)
            {
                if (!vocabulary.TryGetValue(token, out int known) || known != id)
                    throw new ModelConfigException(folder.Folder, token, $"the folder declares token '{token}' with id {id}, but vocab.json disagrees");
                continue;
            }
            if (id != VocabularySize)
                throw new ModelConfigException(folder.Folder, token, $"added token '{token}' has id {id}; the next free id is {VocabularySize}");
            _added = _added.With(token, id);
        }

        BosToken = folder.BosToken;
        EosToken = folder.EosToken;
        PadToken = folder.PadToken;
        UnknownToken = folder.UnknownToken;
        BosTokenId = RequireId(folder, "bos_token", BosToken);
        EosTokenId = RequireId(folder, "eos_token", EosToken);
        PadTokenId = RequireId(folder, "pad_token", PadToken);
        UnknownTokenId = RequireId(folder, "unk_token", UnknownToken);

        SpecialTokens = new[] { BosToken, EosToken, UnknownToken, PadToken }
            .Concat(folder.AdditionalSpecialTokens)
            .Concat(folder.AddedTokens.Where(a => a.Special).Select(a => a.Token))
            .Distinct(StringComparer.Ordinal).ToArray();
        var specialIds = SpecialTokens.Select(t => (t, RequireId(folder, "additional_special_tokens", t))).ToArray();
        _specialIds = specialIds.Select(p => p.Item2).ToHashSet();
        _added = _added.WithSplitLiterals(specialIds);
    }

    /// <summary>The byte-level BPE model underneath (no special-token handling, no BOS/EOS): useful for inspection.</summary>
    public BpeTokenizer Model { get; }

    /// <summary>The longest id sequence the text encoder accepts, BOS and EOS included (77 for SD).</summary>
    public int ModelMaxLength { get; }

    /// <summary>The start token (<c>&lt;|startoftext|&gt;</c>).</summary>
    public string BosToken { get; }

    /// <summary>The end token (<c>&lt;|endoftext|&gt;</c>).</summary>
    public string EosToken { get; }

    /// <summary>The padding token read from the folder.</summary>
    public string PadToken { get; }

    /// <summary>The unknown token (never produced: every byte has a token).</summary>
    public string UnknownToken { get; }

    /// <summary>Id of <see cref="BosToken"/>.</summary>
    public int BosTokenId { get; }

    /// <summary>Id of <see cref="EosToken"/>.</summary>
    public int EosTokenId { get; }

    /// <summary>Id of <see cref="PadToken"/>.</summary>
    public int PadTokenId { get; }

    /// <summary>Id of <see cref="UnknownToken"/>.</summary>
    public int UnknownTokenId { get; }

    /// <summary>The special tokens, split out of the raw text before cleaning (BOS, EOS, UNK, PAD and any others the folder lists).</summary>
    public IReadOnlyList<string> SpecialTokens { get; }

    /// <summary>The size of <c>vocab.json</c>.</summary>
    public int BaseVocabularySize { get; }

    /// <summary>The number of ids, added tokens included.</summary>
    public int VocabularySize => BaseVocabularySize + _added.Tokens.Count;

    /// <summary>Tokens added on top of <c>vocab.json</c>, in id order (the first has id <see cref="BaseVocabularySize"/>).</summary>
    public IReadOnlyList<string> AddedTokens => _added.Tokens;

    /// <summary>Loads a tokenizer folder: <c>vocab.json</c>, <c>merges.txt</c> and, when present,
    /// <c>special_tokens_map.json</c>, <c>tokenizer_config.json</c>, <c>added_tokens.json</c>.</summary>
    /// <exception cref="ModelConfigException">A file is missing, malformed or beyond <paramref name="limits"/>, or a special
    /// token is not in the vocabulary.</exception>
    /// <param name="tokenizerFolder">The folder.</param>
    /// <param name="limits">Bounds on what the file may make the library allocate (default: <see cref="ResourceLimits.Default"/>, or those of the library call in progress).</param>
    public static ClipTokenizer FromFolder(string tokenizerFolder, ResourceLimits? limits = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tokenizerFolder);
        using var scope = ResourceLimits.Use(limits);
        string folder = Path.GetFullPath(tokenizerFolder);
        if (!Directory.Exists(folder)) throw new ModelConfigException(folder, null, "the tokenizer folder does not exist");
        string vocabPath = Path.Combine(folder, ClipTokenizerFolder.VocabFile);
        string mergesPath = Path.Combine(folder, ClipTokenizerFolder.MergesFile);

        var vocabulary = ReadVocabulary(vocabPath);
        var merges = ReadMerges(mergesPath);
        var settings = ClipTokenizerFolder.Read(folder);

        BpeTokenizer model;
        try
        {
            model = BpeTokenizer.Create(new BpeOptions(vocabulary)
            {
                Merges = merges,
                ByteLevel = true,
                EndOfWordSuffix = "</w>",
                Normalizer = ClipTextCleaner.Instance,
                PreTokenizer = ClipPreTokenizer.Instance,
                // The two literals CLIP's word pattern keeps whole (e.g. "<|ENDOFTEXT|>" after lower-casing): the
                // reference's BPE cache maps them to themselves, i.e. to their ids.
                SpecialTokens = new[] { "<|startoftext|>", "<|endoftext|>" }
                    .Where(vocabulary.ContainsKey).ToDictionary(t => t, t => vocabulary[t]),
            });
        }
        catch (InvalidOperationException ex)
        {
            throw new ModelConfigException(mergesPath, null, $"the BPE model cannot be built: {ex.Message}", ex);
        }
        return new ClipTokenizer(model, vocabulary, settings);
    }

    /// <summary>Token ids of <paramref name="text"/> with BOS and EOS, truncated to <see cref="ModelMaxLength"/>
    /// (BOS, the first <c>ModelMaxLength - 2</c> ids, EOS); no padding.</summary>
    public IReadOnlyList<int> Encode(string text) => Encode(text, truncate: true);

    /// <summary>Token ids of <paramref name="text"/> with BOS and EOS; <paramref name="truncate"/> false keeps every id.</summary>
    public IReadOnlyList<int> Encode(string text, bool truncate)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = truncate ? EncodePrefix(text, ModelMaxLength - 2) : EncodeWithoutSpecialTokens(text);
        int keep = truncate ? Math.Min(ids.Count, ModelMaxLength - 2) : ids.Count;
        var result = new int[keep + 2];
        result[0] = BosTokenId;
        for (int i = 0; i < keep; i++) result[i + 1] = ids[i];
        result[^1] = EosTokenId;
        return result;
    }

    /// <summary>Token ids of <paramref name="text"/> without BOS/EOS and without truncation.</summary>
    public IReadOnlyList<int> EncodeWithoutSpecialTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var table = _added;
        var ids = new List<int>(text.Length / 3 + 4);
        foreach (var (start, length, literalId) in table.Split(text))
        {
            if (literalId >= 0) ids.Add(literalId);
            else ids.AddRange(Model.EncodeToIds(text.Substring(start, length)));
        }
        return ids;
    }

    /// <summary>The first <paramref name="maxTokens"/> ids of <see cref="EncodeWithoutSpecialTokens"/>, without
    /// encoding the rest: words are BPE-merged one at a time until enough ids are collected, and a word far longer
    /// than the ids still needed is merged from its first <c>(needed + 16) × longest vocabulary token</c> characters
    /// only. BPE cost grows faster than linearly in a word's length, so without this bound a megabyte-long word would
    /// take minutes although only 75 of its ids are kept.</summary>
    internal IReadOnlyList<int> EncodePrefix(string text, int maxTokens) => EncodePrefix(text, maxTokens, out _);

    /// <summary><see cref="EncodePrefix(string, int)"/>, also reporting how many characters were handed to BPE
    /// merging (the super-linear part), so tests can check the bound without a clock.</summary>
    internal IReadOnlyList<int> EncodePrefix(string text, int maxTokens, out long mergedChars)
    {
        ArgumentNullException.ThrowIfNull(text);
        mergedChars = 0;
        var ids = new List<int>(Math.Clamp(maxTokens, 0, 1024));
        if (maxTokens <= 0) return ids;
        foreach (var (start, length, literalId) in _added.Split(text))
        {
            if (literalId >= 0)
            {
                ids.Add(literalId);
            }
            else
            {
                string cleaned = ClipTextCleaner.Instance.Normalize(text.AsSpan(start, length));
                foreach (var (offset, wordLength) in ClipPreTokenizer.Split(cleaned))
                {
                    int needed = maxTokens - ids.Count;
                    if (needed <= 0) break;
                    long cap = (needed + 16L) * _longestTokenChars;
                    int take = (int)Math.Min(wordLength, cap);
                    // Never cut a surrogate pair: the BPE model would see a lone surrogate.
                    if (take < wordLength && take > 0 && char.IsHighSurrogate(cleaned[offset + take - 1])) take--;
                    mergedChars += take;
                    var wordIds = Model.EncodeToIds(cleaned.AsSpan(offset, take), considerPreTokenization: false, considerNormalization: false);
                    for (int k = 0; k < wordIds.Count && ids.Count < maxTokens; k++) ids.Add(wordIds[k]);
                }
            }
            if (ids.Count >= maxTokens) break;
        }
        return ids;
    }

    /// <summary>The token strings of <paramref name="text"/> (vocabulary spelling: byte-level alphabet, <c>&lt;/w&gt;</c>
    /// ends a word), without BOS/EOS — transformers' <c>tokenizer.tokenize(text)</c>.</summary>
    public IReadOnlyList<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var table = _added;
        var tokens = new List<string>();
        foreach (var (start, length, literalId) in table.Split(text))
        {
            if (literalId >= 0) tokens.Add(text.Substring(start, length));
            else tokens.AddRange(Model.EncodeToTokens(text.Substring(start, length), out _).Select(t => t.Value));
        }
        return tokens;
    }

    /// <summary>Encodes a batch: every row is <see cref="Encode(string)"/> (truncated), padded with
    /// <see cref="PadTokenId"/> to <see cref="ModelMaxLength"/> (or, with <paramref name="padToMaxLength"/> false, to the
    /// longest row).</summary>
    internal TokenizedBatch EncodeBatch(IReadOnlyList<string> texts, bool padToMaxLength = true)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var rows = texts.Select((t, i) => Encode(t ?? throw new ArgumentException($"texts[{i}] is null", nameof(texts)))).ToArray();
        int length = padToMaxLength ? ModelMaxLength : rows.Length == 0 ? 0 : rows.Max(r => r.Count);
        var ids = new long[rows.Length, length];
        var mask = new long[rows.Length, length];
        for (int b = 0; b < rows.Length; b++)
        {
            for (int i = 0; i < length; i++)
            {
                bool real = i < rows[b].Count;
                ids[b, i] = real ? rows[b][i] : PadTokenId;
                mask[b, i] = real ? 1 : 0;
            }
        }
        return new TokenizedBatch(ids, mask, rows.Select(r => r.Count).ToArray());
    }

    /// <summary>The padded input ids of <paramref name="texts"/> as an int64 tensor [batch, <see cref="ModelMaxLength"/>]
    /// on <paramref name="device"/> (CPU by default) — what Stable Diffusion feeds its text encoder.</summary>
    public torch.Tensor EncodeToTensor(IReadOnlyList<string> texts, torch.Device? device = null) =>
        EncodeBatch(texts, padToMaxLength: true).InputIdsTensor(device);

    /// <summary>Text of <paramref name="ids"/>, as transformers' <c>decode</c> (with its default clean-up of spaces
    /// before punctuation when the folder asks for it). Special tokens are left out unless
    /// <paramref name="skipSpecialTokens"/> is false.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var table = _added;
        var parts = new List<string>();
        var bytes = new List<byte>();

        void Flush()
        {
            if (bytes.Count == 0) return;
            string decoded = Encoding.UTF8.GetString(bytes.ToArray()).Replace("</w>", " ", StringComparison.Ordinal).Trim();
            parts.Add(decoded);
            bytes.Clear();
        }

        foreach (int id in ids)
        {
            if (skipSpecialTokens && _specialIds.Contains(id)) continue;
            if (id >= BaseVocabularySize)
            {
                if (id - BaseVocabularySize >= table.Tokens.Count) throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id {id} is not in the vocabulary (size {VocabularySize})");
                Flush();
                parts.Add(table.Tokens[id - BaseVocabularySize]);
                continue;
            }
            string token = id >= 0 && id < _idToToken.Length && _idToToken[id] is { } t ? t
                : throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id {id} is not in the vocabulary (size {VocabularySize})");
            foreach (char c in token)
            {
                // Special tokens such as "<|endoftext|>" are plain printable ASCII, which the alphabet maps to itself.
                if (ByteLevelAlphabet.TryDecode(c, out byte b)) bytes.Add(b);
                else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }
        Flush();
        string text = string.Join(' ', parts);
        return _cleanUpSpaces ? CleanUpSpaces(text) : text;
    }

    /// <summary>Adds <paramref name="token"/> as one whole token with the next free id (<see cref="VocabularySize"/>
    /// before the call) and returns that id. It is matched in raw text before cleaning, case-sensitively, and never
    /// split by BPE (transformers' <c>add_tokens</c>).</summary>
    /// <exception cref="ConceptTokenException">The token is already in the vocabulary (as a whole word, an added token or a special token).</exception>
    public int AddToken(string token)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(token);
        lock (_addLock)
        {
            if (TryGetTokenId(token, out int existing)) throw ConceptTokenException.AlreadyExists(token, existing);
            int id = VocabularySize;
            _added = _added.With(token, id);
            return id;
        }
    }

    /// <summary>The id of a vocabulary entry (exact spelling, e.g. <c>dog&lt;/w&gt;</c>), an added or a special token. A plain
    /// word such as <c>sks</c> is also found when it is a single whole-word token (<c>sks&lt;/w&gt;</c>).</summary>
    public bool TryGetTokenId(string token, out int id)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (_added.TryGetId(token, out id)) return true;
        if (_vocabulary.TryGetValue(token, out id)) return true;
        return _vocabulary.TryGetValue(token + "</w>", out id) && IsWholeWordSpelling(token);
    }

    /// <summary>The vocabulary spelling of <paramref name="id"/> (byte-level alphabet), or the added token's text.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public string GetToken(int id)
    {
        if (id >= BaseVocabularySize && id - BaseVocabularySize < _added.Tokens.Count) return _added.Tokens[id - BaseVocabularySize];
        if (id >= 0 && id < _idToToken.Length && _idToToken[id] is { } token) return token;
        throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is not in the vocabulary (size {VocabularySize})");
    }

    /// <summary>Whether <paramref name="id"/> belongs to a special token (BOS, EOS, PAD, UNK, ...).</summary>
    public bool IsSpecialTokenId(int id) => _specialIds.Contains(id);

    // "sks" is found as "sks</w>" only if encoding "sks" really gives that single token (the spelling is plain ASCII
    // letters the cleaner leaves alone).
    private bool IsWholeWordSpelling(string word) =>
        EncodeWithoutSpecialTokens(word) is [var single] && single >= 0 && single < _idToToken.Length && _idToToken[single] == word + "</w>";

    private int RequireId(ClipTokenizerFolder folder, string key, string token)
    {
        if (_added.TryGetId(token, out int id) || _vocabulary.TryGetValue(token, out id)) return id;
        throw new ModelConfigException(Path.Combine(folder.Folder, ClipTokenizerFolder.SpecialTokensMapFile), key, $"the token '{token}' is not in vocab.json");
    }

    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        try
        {
            using var stream = TokenizerFiles.OpenRead(path);
            var vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(stream)
                ?? throw new ModelConfigException(path, null, "expected a JSON object of token -> id");
            if (vocabulary.Count == 0) throw new ModelConfigException(path, null, "the vocabulary is empty");
            int maxTokens = ResourceLimits.Current.MaxVocabSize;
            if (vocabulary.Count > maxTokens)
                throw new ModelConfigException(path, null, $"{vocabulary.Count:N0} tokens {ResourceLimits.Exceeds(nameof(ResourceLimits.MaxVocabSize), maxTokens)}");
            var duplicate = vocabulary.GroupBy(p => p.Value).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null) throw new ModelConfigException(path, duplicate.First().Key, $"id {duplicate.Key} is used by {duplicate.Count()} tokens");
            if (vocabulary.Values.Any(v => v < 0 || v >= vocabulary.Count))
                throw new ModelConfigException(path, null, "token ids must be 0 .. size - 1");
            return vocabulary;
        }
        catch (JsonException ex)
        {
            throw new ModelConfigException(path, null, $"not a JSON object of token -> id ({ex.Message})", ex);
        }
    }

    // As transformers: strip the file, drop its first line (the "#version" header) and keep at most MaxMerges lines.
    private static List<string> ReadMerges(string path)
    {
        string text;
        using (var reader = new StreamReader(TokenizerFiles.OpenRead(path), Encoding.UTF8)) text = reader.ReadToEnd();
        string[] lines = text.Trim().Split('\n');
        var merges = new List<string>(Math.Min(lines.Length, MaxMerges));
        for (int i = 1; i < lines.Length && i <= MaxMerges; i++)
        {
            string[] pair = lines[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            // A malformed line can never match a pair in the reference either, so it is dropped, keeping later ranks in order.
            if (pair.Length == 2) merges.Add(pair[0] + " " + pair[1]);
        }
        if (merges.Count == 0) throw new ModelConfigException(path, null, "merges.txt holds no merges");
        return merges;
    }

    // transformers' clean_up_tokenization.
    private static string CleanUpSpaces(string text) => text
        .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal)
        .Replace(" !", "!", StringComparison.Ordinal).Replace(" ,", ",", StringComparison.Ordinal)
        .Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" 's", "'s", StringComparison.Ordinal)
        .Replace(" 've", "'ve", StringComparison.Ordinal).Replace(" 're", "'re", StringComparison.Ordinal);
}
