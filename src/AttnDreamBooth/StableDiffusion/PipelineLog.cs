using Microsoft.Extensions.Logging;

namespace AttnDreamBooth.StableDiffusion;

/// <summary>Source-generated log messages of the pipelines.</summary>
internal static partial class PipelineLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Loaded {Component} from '{Path}' ({Parameters:N0} parameters)")]
    public static partial void ComponentLoaded(ILogger logger, string component, string path, long parameters);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Validated {Count} concept images for '{Token}' ({Category})")]
    public static partial void ImagesValidated(ILogger logger, int count, string token, string category);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "Encoded {Count} augmented variants to latents in {Elapsed}")]
    public static partial void LatentsCached(ILogger logger, int count, TimeSpan elapsed);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "Stage {Stage} ({Name}): {Steps} steps, lr {LearningRate}, batch {BatchSize}, {TrainableTensors} trainable tensors ({TrainableElements:N0} values)")]
    public static partial void StageStarted(ILogger logger, int stage, string name, int steps, double learningRate, int batchSize, int trainableTensors, long trainableElements);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "Stage {Stage} step {Step}/{Steps}: loss {Loss:G5} (mse {Mse:G5}, attention {Attention:G5})")]
    public static partial void StepCompleted(ILogger logger, int stage, int step, int steps, double loss, double mse, double attention);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "Checkpoint written to '{Path}'")]
    public static partial void CheckpointWritten(ILogger logger, string path);

    [LoggerMessage(EventId = 106, Level = LogLevel.Information, Message = "Resuming from '{Path}' at stage {Stage}, step {Step}")]
    public static partial void Resuming(ILogger logger, string path, int stage, int step);

    [LoggerMessage(EventId = 107, Level = LogLevel.Information, Message = "Training finished in {Elapsed}")]
    public static partial void TrainingFinished(ILogger logger, TimeSpan elapsed);

    [LoggerMessage(EventId = 108, Level = LogLevel.Information, Message = "Stage {Stage} skipped (0 steps)")]
    public static partial void StageSkipped(ILogger logger, int stage);

    [LoggerMessage(EventId = 109, Level = LogLevel.Information, Message = "Generating {Count} image(s) for \"{Prompt}\" with {Sampler}, {Steps} steps, guidance {Guidance}")]
    public static partial void Generating(ILogger logger, int count, string prompt, string sampler, int steps, double guidance);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Saved personalized model to '{Path}'")]
    public static partial void ModelSaved(ILogger logger, string path);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Reused {Count} class images of \"{Prompt}\" from '{Folder}'")]
    public static partial void ClassImagesReused(ILogger logger, int count, string prompt, string folder);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Generated {Count} class images of \"{Prompt}\" into {Folder} in {Elapsed}")]
    public static partial void ClassImagesGenerated(ILogger logger, int count, string prompt, string folder, TimeSpan elapsed);

    [LoggerMessage(EventId = 113, Level = LogLevel.Information, Message = "Exported the concept '{Token}' as {Format} to '{Path}' ({Bytes:N0} bytes)")]
    public static partial void ConceptExported(ILogger logger, string token, string format, string path, long bytes);

    [LoggerMessage(EventId = 114, Level = LogLevel.Information, Message = "LoRA adapters on {Layers} U-Net layers ({Parameters:N0} parameters, rank {Rank}, {Modules}); the U-Net's weights stay frozen")]
    public static partial void LoraCreated(ILogger logger, int layers, long parameters, int rank, string modules);

    [LoggerMessage(EventId = 115, Level = LogLevel.Warning, Message = "The concept '{Concept}' was trained on the base model '{Recorded}' but is loaded onto '{Actual}'; check that they are the same weights (PersonalizedModelLoadOptions.VerifyBaseModel compares their fingerprints)")]
    public static partial void BaseModelNameDiffers(ILogger logger, string concept, string recorded, string actual);

    [LoggerMessage(EventId = 117, Level = LogLevel.Information, Message = "Encoding {Count} augmented variants of {Images} concept images with the VAE before the first step")]
    public static partial void CachingLatents(ILogger logger, int count, int images);

    [LoggerMessage(EventId = 118, Level = LogLevel.Information, Message = "Laid {Weights} U-Net convolution weights out channels-last until training ends")]
    public static partial void ChannelsLastApplied(ILogger logger, int weights);

    [LoggerMessage(EventId = 116, Level = LogLevel.Information, Message = "Released the {Component}'s weights ({Parameters:N0} parameters) until training ends")]
    public static partial void WeightsReleased(ILogger logger, string component, long parameters);

    [LoggerMessage(EventId = 119, Level = LogLevel.Information, Message = "Adapting the VAE decoder of '{Token}' to {Images} photos: {Steps} steps, lr {LearningRate}, batch {BatchSize}, {Tensors} tensors ({Parameters:N0} values); the encoder stays frozen")]
    public static partial void DecoderAdaptationStarted(ILogger logger, string token, int images, int steps, double learningRate, int batchSize, int tensors, long parameters);

    [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "Adapted the VAE decoder in {Elapsed}: reconstruction loss {First:G4} at the first step, {Last:G4} at the last")]
    public static partial void DecoderAdapted(ILogger logger, TimeSpan elapsed, double first, double last);
}
