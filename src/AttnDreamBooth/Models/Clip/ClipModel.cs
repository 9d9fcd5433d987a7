using AttnDreamBooth.IO;
using TorchSharp;
using TorchSharp.Modules;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Clip;

/// <summary>
/// transformers <c>CLIPModel</c> without its text transformer: <c>vision_model</c>, <c>visual_projection</c>,
/// <c>text_projection</c> and <c>logit_scale</c>, named as in CLIPModel checkpoints. The text transformer
/// (<c>text_model.*</c>) is supplied as an <see cref="IClipTextTower"/>, so the library's CLIP text encoder serves both
/// Stable Diffusion and evaluation.
/// </summary>
internal sealed class ClipModel : torch.nn.Module
{
#pragma warning disable IDE1006
    private readonly ClipVisionTransformer vision_model;
    private readonly Linear visual_projection;
    private readonly Linear text_projection;
    private readonly Parameter logit_scale;
#pragma warning restore IDE1006

    /// <summary>Creates the model with parameters on <paramref name="device"/>.</summary>
    /// <exception cref="TensorAllocationException">The parameters do not fit in memory.</exception>
    public ClipModel(ClipModelConfig config, torch.Device? device = null) : base("clip")
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        (vision_model, visual_projection, text_projection) = TensorAllocation.GuardModel("CLIP model", ClipVisionLimits.Estimate(config), () => (
            new ClipVisionTransformer(config.Vision, device),
            torch.nn.Linear(config.Vision.HiddenSize, config.ProjectionDim, hasBias: false, device: device),
            torch.nn.Linear(config.TextHiddenSize, config.ProjectionDim, hasBias: false, device: device)));
        logit_scale = new Parameter(torch.full(Array.Empty<long>(), Kept(config.LogitScaleInitValue), device: device));
        RegisterComponents();
    }

    /// <summary>The configuration.</summary>
    public ClipModelConfig Config { get; }

    /// <summary>The vision tower.</summary>
    public ClipVisionTransformer VisionModel => vision_model;

    /// <summary>The text tower, when one was attached.</summary>
    public IClipTextTower? TextTower { get; private set; }

    /// <summary>The learned temperature (log scale).</summary>
    public torch.Tensor LogitScale => logit_scale;

    /// <summary>The device of the parameters.</summary>
    public torch.Device Device => visual_projection.weight!.device;

    /// <summary>Whether a state-dict key belongs to the text transformer (loaded by the text tower, not by this module).</summary>
    public static bool IsTextModelKey(string key) => key.StartsWith("text_model.", StringComparison.Ordinal);

    /// <summary>Loads a <c>CLIPModel</c> folder (config.json + model.safetensors [+ preprocessor_config.json]) with a text
    /// tower of your choice.</summary>
    /// <param name="folder">The folder written by <c>CLIPModel.save_pretrained</c>.</param>
    /// <param name="textTower">Builds the text tower from the config and the folder (its weights are the folder's
    /// <c>text_model.*</c> tensors and its tokenizer the folder's); null loads an image-only model.</param>
    /// <param name="device">Where the parameters live.</param>
    public static ClipModel FromFolder(string folder, Func<ClipModelConfig, string, IClipTextTower>? textTower, torch.Device? device = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var config = ClipModelConfig.Load(Path.Combine(folder, "config.json"));
        var model = new ClipModel(config, device);
        try
        {
            using var source = StateDictSource.OpenComponent(folder);
            if (!source.Names.Any(IsTextModelKey) && textTower is not null)
                throw new ModelConfigException(folder, null, "a text tower was requested but the weights hold no text_model.* tensors");
            model.eval();
            StateDictLoader.Load(model, source, new StateDictLoadOptions
            {
                // Older transformers files also store the vision position_ids buffer, which this module computes.
                KeyMap = k => IsTextModelKey(k) || k == "vision_model.embeddings.position_ids" ? null : k,
            });
            if (textTower is not null) model.TextTower = textTower(config, folder);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Loads the <c>text_model.*</c> tensors of a <c>CLIPModel</c> folder into a text transformer module whose
    /// state-dict keys are transformers' (<c>text_model.embeddings…</c>, <c>text_model.encoder.layers…</c>,
    /// <c>text_model.final_layer_norm…</c>), strictly; the other CLIPModel tensors and the legacy <c>position_ids</c>
    /// buffer are left out.</summary>
    /// <param name="textModel">The text transformer.</param>
    /// <param name="folder">The CLIPModel folder.</param>
    /// <param name="keyMap">Optional further renaming of the text keys to the module's.</param>
    public static StateDictLoadReport LoadTextModelWeights(torch.nn.Module textModel, string folder, Func<string, string?>? keyMap = null)
    {
        ArgumentNullException.ThrowIfNull(textModel);
        using var source = StateDictSource.OpenComponent(folder);
        if (!source.Names.Any(IsTextModelKey)) throw new ModelConfigException(folder, null, "the weights hold no text_model.* tensors");
        return StateDictLoader.Load(textModel, source, new StateDictLoadOptions
        {
            KeyMap = k => IsTextModelKey(k) && k != "text_model.embeddings.position_ids" ? (keyMap is null ? k : keyMap(k)) : null,
            OptionalModuleKey = k => k.EndsWith("position_ids", StringComparison.Ordinal),
        });
    }

    /// <summary>Attaches (or replaces) the text tower.</summary>
    public void AttachTextTower(IClipTextTower tower)
    {
        ArgumentNullException.ThrowIfNull(tower);
        TextTower = tower;
    }

    /// <summary><c>get_image_features</c>: the projected (not normalised) image embeddings [B, projection].</summary>
    public torch.Tensor GetImageFeatures(torch.Tensor pixelValues)
    {
        using var scope = torch.NewDisposeScope();
        return visual_projection.call(vision_model.call(pixelValues.to(Device))).MoveToOuterDisposeScope();
    }

    /// <summary>Projects text pooled outputs [P, text hidden] to text embeddings [P, projection].</summary>
    public torch.Tensor ProjectText(torch.Tensor pooledOutput) => text_projection.call(pooledOutput.to(Device));

    /// <summary>Projects vision pooled outputs [B, hidden] to image embeddings [B, projection].</summary>
    public torch.Tensor ProjectImage(torch.Tensor pooledOutput) => visual_projection.call(pooledOutput.to(Device));

    /// <summary><c>get_text_features</c>: the projected (not normalised) text embeddings of prompts [P, projection].</summary>
    /// <exception cref="InvalidOperationException">No text tower is attached.</exception>
    public torch.Tensor GetTextFeatures(IReadOnlyList<string> prompts)
    {
        var tower = TextTower ?? throw new InvalidOperationException("This CLIP model has no text tower; load it with a text-tower factory or call AttachTextTower.");
        using var scope = torch.NewDisposeScope();
        return ProjectText(tower.EncodePooled(prompts, Device)).MoveToOuterDisposeScope();
    }

    /// <summary><c>logits_per_image</c> [images, texts] = exp(logit_scale) · cosine of the embeddings.</summary>
    public torch.Tensor LogitsPerImage(torch.Tensor imageEmbeds, torch.Tensor textEmbeds)
    {
        using var scope = torch.NewDisposeScope();
        var cosine = Normalize(imageEmbeds).mm(Normalize(textEmbeds).t());
        return (cosine * logit_scale.exp()).MoveToOuterDisposeScope();
    }

    /// <summary><c>x / x.norm(dim=-1, keepdim=True)</c>: the L2 normalisation CLIP applies to its embeddings.</summary>
    internal static torch.Tensor Normalize(torch.Tensor embeddings)
    {
        using var scope = torch.NewDisposeScope();
        return embeddings.div(embeddings.norm(-1, true)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) TextTower?.Dispose();
        base.Dispose(disposing);
    }
}
