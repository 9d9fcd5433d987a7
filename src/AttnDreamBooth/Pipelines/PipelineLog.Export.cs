using Microsoft.Extensions.Logging;

namespace AttnDreamBooth.Pipelines;

internal static partial class PipelineLog
{
    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Exported the concept '{Token}' as {Format} to '{Path}' ({Bytes:N0} bytes)")]
    public static partial void ConceptExported(ILogger logger, string token, ConceptExportFormat format, string path, long bytes);
}
