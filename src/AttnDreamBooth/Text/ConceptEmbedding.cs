using AttnDreamBooth.IO;
using AttnDreamBooth.Models.Clip;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Text;

/// <summary>
/// The trainable embedding rows of one or more concept tokens, spliced into a <see cref="ClipTextModel"/> through
/// <c>inputs_embeds</c>. The only parameter is <see cref="Weight"/> [rows, hidden], so gradients and optimizer state
/// exist only for these rows and the text encoder's own token table stays bit-identical while training.
/// </summary>
/// <remarks>
/// <para>A row belongs either to a <see cref="ConceptTokenKind.New"/> token (added to the tokenizer; its id is at or
/// past the end of the table, which is not resized) or to an <see cref="ConceptTokenKind.Existing"/> vocabulary token
/// such as <c>sks</c> (its table row is left alone and replaced in <see cref="Embed"/>).</para>
/// <para>Files: <see cref="Save"/> writes diffusers' <c>learned_embeds.safetensors</c>; <see cref="Load(string, ClipTokenizer, ClipTextModel, string?)"/> reads that and
/// A1111-style safetensors embeddings (see <see cref="LearnedEmbeddings"/>). A file entry of n rows becomes the tokens
/// <c>name</c>, <c>name_1</c> … <c>name_{n-1}</c> (diffusers' multi-vector convention, see <see cref="ExpandPrompt"/>).</para>
/// </remarks>
internal sealed class ConceptEmbedding : nn.Module
{
    // Named like the registered parameter so Module.to(device / dtype) swaps the field too.
    private readonly Parameter weight;
    private readonly string[] _tokens;
    private readonly int[] _ids;
    private readonly ConceptTokenKind[] _kinds;
    private readonly (string Name, int Start, int Count)[] _groups;

    private ConceptEmbedding(ClipTextModel textModel, Tensor rows, string[] tokens, int[] ids, ConceptTokenKind[] kinds, (string, int, int)[] groups)
        : base(nameof(ConceptEmbedding))
    {
        // The text model is deliberately not a registered child: parameters() must yield the concept rows only.
        TextModel = textModel;
        _tokens = tokens;
        _ids = ids;
        _kinds = kinds;
        _groups = groups;
        weight = new Parameter(rows, requires_grad: true);
        register_parameter(nameof(weight), weight);
    }

    /// <summary>The trainable rows [rows, hidden], one per entry of <see cref="Tokens"/>.</summary>
    public Parameter Weight => weight;

    /// <summary>The token of every row.</summary>
    public IReadOnlyList<string> Tokens => _tokens;

    /// <summary>The id of every row's token.</summary>
    public IReadOnlyList<int> TokenIds => _ids;

    /// <summary>Whether each row's token was added (new) or already in the vocabulary.</summary>
    public IReadOnlyList<ConceptTokenKind> Kinds => _kinds;

    /// <summary>The text encoder the rows are spliced into.</summary>
    public ClipTextModel TextModel { get; }

    /// <summary>Adds the <paramref name="tokens"/> to <paramref name="tokenizer"/> where they are new and creates their
    /// rows, each initialised with an exact copy of its initializer word's first-token embedding (or, for an existing
    /// token without initializer, of its own row).</summary>
    /// <exception cref="ConceptTokenException">A <see cref="ConceptTokenKind.New"/> token is already known, an initializer
    /// tokenizes to nothing, or an existing identifier is not exactly one token.</exception>
    public static ConceptEmbedding Create(ClipTokenizer tokenizer, ClipTextModel textModel, params ConceptToken[] tokens) =>
        Create(tokenizer, textModel, (IEnumerable<ConceptToken>)tokens);

    /// <inheritdoc cref="Create(ClipTokenizer, ClipTextModel, ConceptToken[])"/>
    public static ConceptEmbedding Create(ClipTokenizer tokenizer, ClipTextModel textModel, IEnumerable<ConceptToken> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(textModel);
        ArgumentNullException.ThrowIfNull(tokens);
        var specs = tokens.ToArray();
        if (specs.Length == 0) throw new ArgumentException("At least one concept token is needed.", nameof(tokens));
        var duplicate = specs.GroupBy(s => s.Token, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"The concept token '{duplicate.Key}' is listed twice.", nameof(tokens));

        // Validate everything before the tokenizer is touched, so a failure leaves it unchanged.
        var table = textModel.TokenEmbeddingWeight;
        var plans = new List<(ConceptToken Spec, int? ExistingId, int InitialRow)>();
        foreach (var spec in specs)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(spec.Token, nameof(tokens));
            ConceptTokenIdentity.ThrowIfReserved(tokenizer, spec.Token);
            int? existing = null;
            if (spec.Kind == ConceptTokenKind.New)
            {
                if (tokenizer.TryGetTokenId(spec.Token, out int known)) throw ConceptTokenException.AlreadyExists(spec.Token, known);
                if (spec.InitializerWord is null)
                    throw new ArgumentException($"The new token '{spec.Token}' needs an initializer word (e.g. its class word).", nameof(tokens));
            }
            else
            {
                var ids = tokenizer.EncodeWithoutSpecialTokens(spec.Token);
                if (ids.Count != 1)
                    throw ConceptTokenException.Tokenization(spec.Token, ids.Count, "an existing-token identifier must be exactly one vocabulary token", nameof(tokens));
                existing = ids[0];
                if (tokenizer.IsSpecialTokenId(existing.Value)) throw ConceptTokenException.Reserved(spec.Token, existing.Value);
            }
            int initialRow = spec.InitializerWord is null ? existing!.Value : FirstTokenOf(tokenizer, spec.InitializerWord);
            if (initialRow >= table.shape[0])
                throw new ArgumentException($"The initial embedding of '{spec.Token}' would come from id {initialRow}, which the text encoder's table ({table.shape[0]} rows) does not hold.", nameof(tokens));
            plans.Add((spec, existing, initialRow));
        }

        Tensor rows;
        using (torch.no_grad())
        {
            var index = torch.tensor(plans.Select(p => (long)p.InitialRow).ToArray(), device: table.device);
            rows = table.index_select(0, index).detach().clone();
            index.Dispose();
        }
        var ids2 = plans.Select(p => p.ExistingId ?? tokenizer.AddToken(p.Spec.Token)).ToArray();
        return new ConceptEmbedding(textModel, rows,
            specs.Select(s => s.Token).ToArray(), ids2, specs.Select(s => s.Kind).ToArray(),
            specs.Select((s, i) => (s.Token, i, 1)).ToArray());
    }

    /// <summary>Loads learned embeddings (diffusers <c>learned_embeds.safetensors</c> or an A1111 safetensors embedding),
    /// adding tokens the tokenizer does not know and treating known ones as existing identifiers
    /// (<see cref="ConceptTokenIdentity"/>: a known word binds to the id prompts produce for it), with the default limits
    /// of <see cref="LearnedEmbeddingsReadOptions"/>.</summary>
    /// <param name="path">The safetensors file.</param>
    /// <param name="tokenizer">Receives the new tokens.</param>
    /// <param name="textModel">The encoder the rows are for; its hidden size must match.</param>
    /// <param name="token">Renames the embedding (only for files holding one entry; A1111 files are otherwise named after the file).</param>
    /// <exception cref="ConceptTokenException">The file names a special token (e.g. <c>&lt;|endoftext|&gt;</c>).</exception>
    /// <exception cref="InvalidWeightsException">The file is malformed, holds a non-float tensor or too many rows,
    /// or an embedding is not <c>hidden_size</c> wide.</exception>
    /// <exception cref="AttnDreamBooth.IO.InvalidWeightsException">An embedding holds NaN or infinity.</exception>
    public static ConceptEmbedding Load(string path, ClipTokenizer tokenizer, ClipTextModel textModel, string? token = null) =>
        Load(path, tokenizer, textModel, token, LearnedEmbeddingsReadOptions.Default);

    /// <summary><see cref="Load(string, ClipTokenizer, ClipTextModel, string?)"/> with explicit limits and checks.
    /// Everything is validated before the tokenizer is changed, so a failure leaves it as it was.</summary>
    public static ConceptEmbedding Load(string path, ClipTokenizer tokenizer, ClipTextModel textModel, string? token, LearnedEmbeddingsReadOptions options)
    {
        using var prepared = Prepare(path, tokenizer, textModel, token, options, null);
        return prepared.Apply();
    }

    /// <summary>Reads and validates an embedding file without touching <paramref name="tokenizer"/>; <see cref="PreparedEmbedding.Apply"/>
    /// then adds the new tokens and builds the module. With <paramref name="firstRowBinding"/>, the first row is bound as
    /// that binding says (a saved concept's recorded identity) instead of by the general rule.</summary>
    internal static PreparedEmbedding Prepare(string path, ClipTokenizer tokenizer, ClipTextModel textModel, string? token,
        LearnedEmbeddingsReadOptions options, ConceptTokenBinding? firstRowBinding)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(textModel);
        ArgumentNullException.ThrowIfNull(options);
        var entries = LearnedEmbeddings.Read(path, options);
        string file = Path.GetFullPath(path);
        try
        {
            if (token is not null)
            {
                if (entries.Count != 1) throw new ArgumentException($"'{file}' holds {entries.Count} embeddings; a new name applies to a file with one.", nameof(token));
                entries = [new(token, entries[0].Value)];
            }
            foreach (var (name, tensor) in entries)
            {
                if (tensor.shape[1] != textModel.HiddenSize) throw InvalidWeightsException.EmbeddingWidth(file, name, tensor.shape[1], textModel.HiddenSize);
            }

            var names = new List<string>();
            var groups = new List<(string, int, int)>();
            foreach (var (name, tensor) in entries)
            {
                groups.Add((name, names.Count, (int)tensor.shape[0]));
                for (int r = 0; r < tensor.shape[0]; r++) names.Add(r == 0 ? name : $"{name}_{r}");
            }
            var distinct = new HashSet<string>(StringComparer.Ordinal);
            foreach (string name in names)
            {
                if (!distinct.Add(name)) throw InvalidWeightsException.Embeddings(file, $"the file names the token '{name}' twice");
            }

            var bindings = new ConceptTokenBinding[names.Count];
            for (int i = 0; i < names.Count; i++)
            {
                bindings[i] = i == 0 && firstRowBinding is not null ? firstRowBinding : ConceptTokenIdentity.Resolve(tokenizer, names[i], file);
            }
            var table = textModel.TokenEmbeddingWeight;
            var rows = torch.cat(entries.Select(e => e.Value).ToArray(), 0).to(table.dtype, table.device);
            return new PreparedEmbedding(textModel, tokenizer, rows, names.ToArray(), bindings, groups.ToArray());
        }
        finally
        {
            foreach (var e in entries) e.Value.Dispose();
        }
    }

    /// <summary>A validated embedding file waiting to be applied.</summary>
    internal sealed class PreparedEmbedding : IDisposable
    {
        private readonly ClipTextModel _textModel;
        private readonly ClipTokenizer _tokenizer;
        private readonly string[] _names;
        private readonly ConceptTokenBinding[] _bindings;
        private readonly (string, int, int)[] _groups;
        private Tensor? _rows;

        public PreparedEmbedding(ClipTextModel textModel, ClipTokenizer tokenizer, Tensor rows, string[] names, ConceptTokenBinding[] bindings, (string, int, int)[] groups)
        {
            _textModel = textModel;
            _tokenizer = tokenizer;
            _rows = rows;
            _names = names;
            _bindings = bindings;
            _groups = groups;
        }

        public IReadOnlyList<ConceptTokenBinding> Bindings => _bindings;

        /// <summary>The file's entries (a multi-vector entry's extra rows are <c>name_1</c> … and not listed).</summary>
        public IReadOnlyList<string> EntryNames => _groups.Select(g => g.Item1).ToArray();

        /// <summary>Adds the new tokens (in file order) and builds the module, which takes over the rows.</summary>
        public ConceptEmbedding Apply()
        {
            var rows = _rows ?? throw new InvalidOperationException("The embedding was already applied.");
            var ids = new int[_names.Length];
            for (int i = 0; i < _names.Length; i++)
            {
                ids[i] = _bindings[i].ExistingId ?? _tokenizer.AddToken(_names[i]);
            }
            _rows = null;
            return new ConceptEmbedding(_textModel, rows, _names, ids, _bindings.Select(b => b.Kind).ToArray(), _groups);
        }

        public void Dispose()
        {
            _rows?.Dispose();
            _rows = null;
        }
    }

    /// <summary>Token embeddings [B, T, hidden] of <paramref name="inputIds"/> with every concept token's embedding taken
    /// from <see cref="Weight"/> (differentiable) and every other from the text encoder's table (detached).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is past the end of the table and belongs to no concept row.</exception>
    public Tensor Embed(Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.dim() != 2) throw new ArgumentException($"input_ids must be [batch, length], got [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        using var scope = torch.NewDisposeScope();
        var ids = inputIds.to_type(ScalarType.Int64).to(weight.device);
        var isConcept = torch.zeros_like(ids, dtype: ScalarType.Bool);
        var row = torch.zeros_like(ids);
        for (int k = 0; k < _ids.Length; k++)
        {
            var hit = ids.eq(Kept(_ids[k]));
            isConcept = isConcept.logical_or(hit);
            // An implicit Scalar can be finalized by the GC while libtorch still reads it (its handle is a bare IntPtr);
            // a scalar held by `using` lives until the call has returned.
            using var index = ((long)k).ToScalar();
            row = row.masked_fill(hit, index);
        }
        long tableRows = TextModel.TokenEmbeddingCount;
        var unknown = ids.ge(Kept(tableRows)).logical_and(isConcept.logical_not());
        if (unknown.any().item<bool>())
        {
            long bad = ids.masked_select(unknown)[0].item<long>();
            throw new ArgumentOutOfRangeException(nameof(inputIds), $"token id {bad} is past the text encoder's table ({tableRows} rows) and is not a concept token of this embedding.");
        }
        Tensor table;
        using (torch.no_grad())
        {
            using var zero = 0L.ToScalar();
            table = TextModel.TokenEmbeddings(ids.masked_fill(isConcept, zero));
        }
        var concept = weight.index_select(0, row.flatten()).view(ids.shape[0], ids.shape[1], weight.shape[1]);
        // A text encoder held in half precision for inference computes in its own dtype; the learned rows stay float32.
        if (concept.dtype != table.dtype) concept = concept.to_type(table.dtype);
        return torch.where(isConcept.unsqueeze(-1), concept, table).MoveToOuterDisposeScope();
    }

    /// <summary>Where the token of row <paramref name="row"/> first occurs in each batch row of <paramref name="inputIds"/>:
    /// an int64 tensor [B] (AttnDreamBooth's <c>i_V</c>; the class word follows at <c>i_V + 1</c>).</summary>
    /// <exception cref="ArgumentException">A batch row does not contain the token.</exception>
    public Tensor FirstPositions(Tensor inputIds, int row = 0)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (row < 0 || row >= _ids.Length) throw new ArgumentOutOfRangeException(nameof(row), row, $"the embedding has {_ids.Length} rows");
        if (inputIds.dim() != 2) throw new ArgumentException($"input_ids must be [batch, length], got [{string.Join(", ", inputIds.shape)}].", nameof(inputIds));
        using var scope = torch.NewDisposeScope();
        var hits = inputIds.eq(Kept(_ids[row]));
        var present = hits.any(1);
        if (!present.all().item<bool>())
        {
            long missing = present.logical_not().nonzero()[0, 0].item<long>();
            throw new ArgumentException($"batch row {missing} does not contain '{_tokens[row]}' (id {_ids[row]}).", nameof(inputIds));
        }
        return hits.to_type(ScalarType.Int32).argmax(1).MoveToOuterDisposeScope();
    }

    /// <summary>Runs the text encoder on <paramref name="inputIds"/> with the concept rows spliced in (see <see cref="Embed"/>).</summary>
    public ClipTextOutput Encode(Tensor inputIds, bool outputHiddenStates = false)
    {
        using var embeds = Embed(inputIds);
        return TextModel.Forward(inputIds, embeds, outputHiddenStates);
    }

    /// <summary>The rows per file entry, <c>{name: [n, hidden]}</c>, detached CPU copies.</summary>
    public IReadOnlyDictionary<string, Tensor> ToDictionary()
    {
        using var noGrad = torch.no_grad();
        return _groups.ToDictionary(g => g.Name, g => weight.narrow(0, g.Start, g.Count).detach().cpu().clone(), StringComparer.Ordinal);
    }

    /// <summary>Writes diffusers' <c>learned_embeds.safetensors</c> (<c>{token: [n, hidden]}</c>), atomically.</summary>
    public void Save(string path)
    {
        var tensors = ToDictionary();
        try
        {
            LearnedEmbeddings.Write(path, tensors);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Asynchronous <see cref="Save"/> (the rows are copied on the calling thread, the file written off it).</summary>
    public async Task SaveAsync(string path, CancellationToken ct = default)
    {
        var tensors = ToDictionary();
        try
        {
            await LearnedEmbeddings.WriteAsync(path, tensors, ct).ConfigureAwait(false);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Writes the rows into <paramref name="model"/>'s token table (growing it to hold new ids), so plain
    /// <see cref="ClipTextModel.Forward"/> sees the concepts — for export or inference. Unlike training through
    /// <see cref="Embed"/>, this changes the table, including the rows of existing tokens such as <c>sks</c>.</summary>
    public void WriteInto(ClipTextModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.HiddenSize != weight.shape[1]) throw InvalidWeightsException.EmbeddingWidth("memory", _tokens[0], weight.shape[1], model.HiddenSize);
        long needed = _ids.Max() + 1L;
        if (model.TokenEmbeddingCount < needed) model.ResizeTokenEmbeddings(needed);
        using var noGrad = torch.no_grad();
        var table = model.TokenEmbeddingWeight;
        for (int k = 0; k < _ids.Length; k++) table[_ids[k]].copy_(weight[k]);
    }

    /// <summary>Replaces each multi-row entry's name in <paramref name="prompt"/> by all its tokens (<c>name name_1 …</c>),
    /// as diffusers does for multi-vector embeddings; single-row entries are left as they are.</summary>
    public string ExpandPrompt(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        foreach (var (name, start, count) in _groups.Where(g => g.Count > 1))
            prompt = prompt.Replace(name, string.Join(' ', _tokens.Skip(start).Take(count)), StringComparison.Ordinal);
        return prompt;
    }

    private static int FirstTokenOf(ClipTokenizer tokenizer, string word)
    {
        var ids = tokenizer.EncodeWithoutSpecialTokens(word);
        if (ids.Count == 0) throw ConceptTokenException.Tokenization(word, 0, "an initializer word must give at least one token", "initializerWord");
        return ids[0];
    }
}
