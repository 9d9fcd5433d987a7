using AttnDreamBooth.Models.Vae;

namespace AttnDreamBooth.Tests.Fixtures;

/// <summary>The tiny VAEs of the fixture pipelines (random weights saved by diffusers).</summary>
internal static class VaeTestModels
{
    public static string Sd1Folder => Path.Combine(TestPaths.TinySd1, "vae");
    public static string Sd2Folder => Path.Combine(TestPaths.TinySd2, "vae");

    public static AutoencoderKL LoadSd1() => AutoencoderKL.FromFolder(Sd1Folder);
    public static AutoencoderKL LoadSd2() => AutoencoderKL.FromFolder(Sd2Folder);
}
