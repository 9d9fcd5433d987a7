using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Schedulers;

/// <summary>Tensor steps shared by the samplers: x0 from the model output, clipping and dynamic thresholding.</summary>
internal static class SampleOps
{
    /// <summary>x0 and epsilon from the model output, with a_t given through sqrt(a_t) and sqrt(1 - a_t).</summary>
    public static (Tensor X0, Tensor Epsilon) Predict(PredictionType type, Tensor modelOutput, Tensor sample, float sqrtAlpha, float sqrtBeta) => type switch
    {
        PredictionType.Epsilon => (sample.sub(modelOutput.mul(Kept(sqrtBeta))).div(Kept(sqrtAlpha)), modelOutput),
        PredictionType.Sample => (modelOutput.alias(), sample.sub(modelOutput.mul(Kept(sqrtAlpha))).div(Kept(sqrtBeta))),
        PredictionType.VPrediction => (sample.mul(Kept(sqrtAlpha)).sub(modelOutput.mul(Kept(sqrtBeta))), modelOutput.mul(Kept(sqrtAlpha)).add(sample.mul(Kept(sqrtBeta)), One)),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown prediction type"),
    };

    /// <summary>Dynamic thresholding (Imagen): per sample, s = clamp(quantile(|x0|, ratio), 1, max); x0 = clamp(x0, -s, s) / s.</summary>
    public static Tensor Threshold(Tensor x0, double ratio, double maxValue)
    {
        var dtype = x0.dtype;
        var x = dtype is ScalarType.Float32 or ScalarType.Float64 ? x0 : x0.to_type(ScalarType.Float32);
        long batch = x.shape[0];
        var flat = x.reshape(batch, -1);
        var s = flat.abs().quantile(tensor(ratio, dtype: x.dtype, device: x.device), dim: 1).clamp(Kept(1.0), Kept(maxValue)).unsqueeze(1);
        var result = flat.clamp(s.neg(), s).div(s).reshape(x0.shape);
        return result.dtype == dtype ? result : result.to_type(dtype);
    }

    /// <summary>Applies thresholding or clipping to x0 as the config asks (thresholding wins, as in diffusers).</summary>
    public static Tensor ClipOrThreshold(SchedulerConfig config, Tensor x0, bool allowClip)
    {
        if (config.Thresholding) return Threshold(x0, config.DynamicThresholdingRatio, config.SampleMaxValue);
        if (allowClip && config.ClipSample) return x0.clamp(Kept(-config.ClipSampleRange), Kept(config.ClipSampleRange));
        return x0;
    }

    public static void CheckSameShape(Tensor modelOutput, Tensor sample, string scheduler)
    {
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        if (!modelOutput.shape.SequenceEqual(sample.shape))
            throw new ArgumentException($"{scheduler}: model output has shape [{string.Join(", ", modelOutput.shape)}] but the sample has [{string.Join(", ", sample.shape)}]", nameof(modelOutput));
    }
}
