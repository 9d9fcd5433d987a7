using AttnDreamBooth.Evaluation;
using AttnDreamBooth.Imaging;
using TorchSharp;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// "&lt;case&gt;/clip-preprocess": <see cref="ClipImageProcessor"/> on the stored uint8 images gives the reference
/// <c>pixel_values</c> within 1e-5 (Pillow-exact resampling). The <c>torch_bicubic_aa</c> tensor is checked twice: against
/// libtorch's bicubic antialias interpolation over OUR geometry (resize size and crop offsets) at its manifest tolerance,
/// and against our Pillow-exact output within the manifest's <c>tolerance_other_resamplers</c> bound (0.02).
/// </summary>
public sealed class ClipPreprocessCheck : IParityCheck
{
    private const string PixelValues = "clip.preprocess.pixel_values";
    private const string TorchPixelValues = "clip.preprocess.torch_bicubic_aa.pixel_values";

    public string Name => "clip-preprocess";
    public IReadOnlyCollection<string> Components => ["clip"];
    public bool AppliesTo(FixtureCase fixture) => fixture.Kind == "clip_eval" && fixture.HasTensor(PixelValues) && ClipFixture.ImageNames(fixture).Count > 0;

    public IEnumerable<string> Claims(FixtureCase fixture) =>
        ClipFixture.ImageNames(fixture).Append(PixelValues).Concat(fixture.HasTensor(TorchPixelValues) ? [TorchPixelValues] : []);

    public void Run(ParityContext context)
    {
        using var scope = torch.NewDisposeScope();
        var processor = ClipImageProcessor.FromFolder(ClipFixture.ModelFolder(context.Case));
        var images = ClipFixture.Images(context);
        var pixels = processor.Preprocess(images);
        context.AssertClose(PixelValues, pixels);
        if (!context.Has(TorchPixelValues)) return;

        context.AssertClose(TorchPixelValues, TorchBicubicAntialias(processor, images));
        var torchReference = context.Tensor(TorchPixelValues);
        double bound = context.Manifest.Root.GetProperty("tensors").GetProperty(PixelValues)
            .GetProperty("tolerance_other_resamplers").GetProperty("torch_bicubic_antialias").GetProperty("atol").GetDouble();
        double diff = torchReference.sub(pixels).abs().max().item<float>();
        Assert.True(diff <= bound, $"Pillow-exact pixel values differ from torch bicubic antialias by {diff:g4} > {bound}");
    }

    /// <summary>The reference's torch path: float interpolate(bicubic, antialias) on 0..255 values, no rounding.</summary>
    private static torch.Tensor TorchBicubicAntialias(ClipImageProcessor processor, IReadOnlyList<RgbImage> images)
    {
        var config = processor.Config;
        var mean = torch.tensor(config.ImageMean.Select(m => (float)m).ToArray()).view(3, 1, 1);
        var std = torch.tensor(config.ImageStd.Select(s => (float)s).ToArray()).view(3, 1, 1);
        var outputs = new List<torch.Tensor>();
        foreach (var image in images)
        {
            var x = image.ToHwcTensor().to_type(torch.float32).permute(2, 0, 1).unsqueeze(0);
            var (h, w) = processor.ResizedSize(image.Height, image.Width);
            if ((h, w) != (image.Height, image.Width))
                x = torch.nn.functional.interpolate(x, [h, w], mode: torch.InterpolationMode.Bicubic, align_corners: false, antialias: true);
            var (top, left) = processor.CropOffsets(h, w);
            x = x[.., .., torch.TensorIndex.Slice(top, top + config.CropHeight), torch.TensorIndex.Slice(left, left + config.CropWidth)];
            outputs.Add((x.squeeze(0).div(Kept(255f)) - mean) / std);
        }
        return torch.stack(outputs);
    }
}
