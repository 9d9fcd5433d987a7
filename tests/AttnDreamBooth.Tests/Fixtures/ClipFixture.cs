using System.Text.Json;
using AttnDreamBooth.Imaging;
using AttnDreamBooth.Tests.Parity;
using TorchSharp;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>Shared access to a clip_eval case: its model folder, stored images and facts.</summary>
public static class ClipFixture
{
    public static string ModelFolder(FixtureCase fixture) => Path.Combine(fixture.Folder, "model");

    /// <summary>The stored input image names in index order (clip.preprocess.image.0, .1, …).</summary>
    public static IReadOnlyList<string> ImageNames(FixtureCase fixture) =>
        fixture.Manifest.WithPrefix("clip.preprocess.image.")
            .Select(t => t.Name)
            .OrderBy(n => int.Parse(n["clip.preprocess.image.".Length..], System.Globalization.CultureInfo.InvariantCulture))
            .ToArray();

    public static IReadOnlyList<RgbImage> Images(ParityContext context) =>
        ImageNames(context.Case).Select(n =>
        {
            using var t = context.Tensor(n);
            return RgbImageDecoding.FromHwcTensor(t);
        }).ToArray();

    public static IReadOnlyList<RgbImage> Images(FixtureCase fixture)
    {
        using var reference = fixture.OpenReference();
        return ImageNames(fixture).Select(n =>
        {
            using var t = reference.ReadTensor(n);
            return RgbImageDecoding.FromHwcTensor(t);
        }).ToArray();
    }

    public static JsonElement Scores(FixtureCase fixture) => fixture.Manifest.Fact("scores");

    public static long[] LongArray(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt64()).ToArray();

    public static string[] StringArray(JsonElement e) => e.EnumerateArray().Select(x => x.GetString()!).ToArray();

    public static torch.Tensor Rows(torch.Tensor t, long[] index) => t.index_select(0, torch.tensor(index, device: t.device));
}
