using Microsoft.Extensions.Logging;

namespace AttnDreamBooth.IO.SingleFile;

internal static partial class SingleFileLog
{
    [LoggerMessage(EventId = 8100, Level = LogLevel.Information,
        Message = "{File}: ignoring {Count} EMA tensors (model_ema.*); set SingleFileLoadOptions.UseEmaWeights to load the U-Net from them")]
    public static partial void IgnoringEma(ILogger logger, string file, int count);

    [LoggerMessage(EventId = 8101, Level = LogLevel.Information, Message = "{File}: loading the U-Net from its {Count} EMA tensors")]
    public static partial void UsingEma(ILogger logger, string file, int count);

    [LoggerMessage(EventId = 8102, Level = LogLevel.Information, Message = "{File}: ignoring {Count} tensors that only original checkpoints hold ({Examples})")]
    public static partial void IgnoringOriginalOnly(ILogger logger, string file, int count, string examples);

    [LoggerMessage(EventId = 8103, Level = LogLevel.Information, Message = "{File}: ignoring {Count} tensors by request ({Examples})")]
    public static partial void IgnoringByRequest(ILogger logger, string file, int count, string examples);

    [LoggerMessage(EventId = 8104, Level = LogLevel.Information, Message = "{File}: skipping {Key} ({Reason})")]
    public static partial void SkippingOnExport(ILogger logger, string file, string key, string reason);
}
