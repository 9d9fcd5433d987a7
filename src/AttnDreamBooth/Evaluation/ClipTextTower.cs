using AttnDreamBooth.Models.Clip;
using AttnDreamBooth.Text;
using TorchSharp;

namespace AttnDreamBooth.Evaluation;

/// <summary>
/// The text transformer of a transformers <c>CLIPModel</c> folder as an <see cref="IClipTextTower"/>: the library's
/// <see cref="ClipTokenizer"/> (the folder's <c>vocab.json</c> / <c>merges.txt</c> / special-token files) and
/// <see cref="ClipTextModel"/> (built from the effective <c>text_config</c>, weights = the folder's <c>text_model.*</c>
/// tensors). Prompts are padded to 77 and encoded WITH the padding attention mask, as <c>CLIPModel.get_text_features</c>
/// is called by the evaluation protocol; the pooled output does not depend on the mask (causal attention), the hidden
/// states after the end token do.
/// </summary>
internal sealed class ClipTextTower : IClipTextTower
{
    /// <summary>Wraps a tokenizer and a text model (the tower owns and disposes the model).</summary>
    public ClipTextTower(ClipTokenizer tokenizer, ClipTextModel model)
    {
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Model = model ?? throw new ArgumentNullException(nameof(model));
    }

    /// <summary>The tokenizer.</summary>
    public ClipTokenizer Tokenizer { get; }

    /// <summary>The text transformer (<c>text_model.*</c>).</summary>
    public ClipTextModel Model { get; }

    /// <summary>Loads a complete <c>CLIPModel</c> folder (config.json, model.safetensors and the tokenizer files, as
    /// written by <c>CLIPModel.save_pretrained</c> + <c>CLIPProcessor.save_pretrained</c>): the vision tower, the
    /// projections and this text tower. Read the image preprocessing with <see cref="ClipImageProcessor.FromFolder"/>.</summary>
    /// <param name="folder">The folder.</param>
    /// <param name="device">Where the parameters live (CPU by default).</param>
    /// <exception cref="IO.ModelConfigException">A config is invalid, or the folder lacks text weights or tokenizer files.</exception>
    /// <exception cref="IO.InvalidWeightsException">The weights do not fit the configs.</exception>
    public static ClipModel LoadModel(string folder, torch.Device? device = null) =>
        ClipModel.FromFolder(folder, (config, path) => FromFolder(path, config, device), device);

    /// <summary>Loads the tower of a <c>CLIPModel</c> folder; the config is read from the folder's config.json.</summary>
    public static ClipTextTower FromFolder(string folder, torch.Device? device = null) =>
        FromFolder(folder, ClipModelConfig.Load(Path.Combine(folder, "config.json")), device);

    /// <summary>Loads the tower of a <c>CLIPModel</c> folder with an already parsed config (the factory signature
    /// <see cref="ClipModel.FromFolder(string, Func{ClipModelConfig, string, IClipTextTower}?, torch.Device?)"/> takes).</summary>
    /// <exception cref="IO.ModelConfigException">The folder has no tokenizer files, no <c>text_model.*</c> weights, or an invalid text config.</exception>
    /// <exception cref="IO.InvalidWeightsException">The text weights do not fit the text config.</exception>
    public static ClipTextTower FromFolder(string folder, ClipModelConfig config, torch.Device? device = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(config);
        if (!File.Exists(Path.Combine(folder, "vocab.json")) || !File.Exists(Path.Combine(folder, "merges.txt")))
            throw new IO.ModelConfigException(folder, null, "has no CLIP tokenizer files (vocab.json, merges.txt) next to the model; save the CLIPProcessor (or CLIPTokenizer) into the same folder");
        var tokenizer = ClipTokenizer.FromFolder(folder);
        var model = new ClipTextModel(ClipTextConfig.FromReader(config.EffectiveTextConfig()), device);
        try
        {
            ClipModel.LoadTextModelWeights(model, folder);
            model.eval();
            model.SetRequiresGrad(false);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return new ClipTextTower(tokenizer, model);
    }

    /// <summary>Tokenizes prompts as the evaluation does (padding to the model length, truncation) and runs the text
    /// transformer with the padding mask. The tensors live on the model's device.</summary>
    /// <exception cref="ArgumentException">No prompts.</exception>
    public ClipTextOutput Encode(IReadOnlyList<string> prompts)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        if (prompts.Count == 0) throw new ArgumentException("At least one prompt is needed.", nameof(prompts));
        var device = Model.TokenEmbeddingWeight.device;
        var batch = Tokenizer.EncodeBatch(prompts);
        using var ids = batch.InputIdsTensor(device);
        using var mask = batch.AttentionMaskTensor(device);
        using var noGrad = torch.no_grad();
        return Model.Forward(ids, attentionMask: mask);
    }

    /// <inheritdoc />
    public torch.Tensor EncodePooled(IReadOnlyList<string> prompts, torch.Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        using var output = Encode(prompts);
        return output.PoolerOutput.to(device).clone();
    }

    /// <inheritdoc />
    public void Dispose() => Model.Dispose();
}
