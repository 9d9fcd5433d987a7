using Microsoft.Extensions.Logging;

namespace AttnDreamBooth.Pipelines;

internal static partial class PipelineLog
{
    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Reused {Count} class images of \"{Prompt}\" from '{Folder}'")]
    public static partial void ClassImagesReused(ILogger logger, int count, string prompt, string folder);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Generated {Count} class images of \"{Prompt}\" into {Folder} in {Elapsed}")]
    public static partial void ClassImagesGenerated(ILogger logger, int count, string prompt, string folder, TimeSpan elapsed);
}
