using AttnDreamBooth.Models.Vae;
using TorchSharp;
using Xunit.Abstractions;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Vae;

public sealed class VaeMemoryOptionsTests(ITestOutputHelper output)
{
    [Fact]
    public void OptionsAreOffByDefault()
    {
        using var vae = new AutoencoderKL(new AutoencoderKLConfig(), ComponentFactories.Meta);
        Assert.False(vae.UseSlicing);
        Assert.Null(vae.Tiling);
    }

    [Fact]
    public void SlicedEqualsBatched()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var vae = VaeTestModels.LoadSd1();
        var images = torch.rand([3, 3, 16, 20], generator: new torch.Generator(3)).mul(Kept(2)).sub(Kept(1));
        var latents = torch.randn([3, 4, 8, 10], generator: new torch.Generator(4));

        using var batchedPosterior = vae.Encode(images);
        var batched = vae.Decode(latents);
        vae.UseSlicing = true;
        using var slicedPosterior = vae.Encode(images);
        var sliced = vae.Decode(latents);

        // Per-image convolutions may pick other blockings than the batched call, so allow float rounding only.
        Assert.True(MaxAbs(sliced, batched) <= 1e-5, $"decode differs by {MaxAbs(sliced, batched):g3}");
        Assert.True(MaxAbs(slicedPosterior.Parameters, batchedPosterior.Parameters) <= 1e-5);
    }

    [Fact]
    public void DiffusersTileGeometryForSdSizes()
    {
        Assert.Equal(new TileGeometry(64, 48, 384, 128), new VaeTilingOptions(512).Geometry(8));
        Assert.Equal(new TileGeometry(96, 72, 576, 192), new VaeTilingOptions(768).Geometry(8));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VaeTilingOptions(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VaeTilingOptions(64, 1.0));
        using var vae = new AutoencoderKL(new AutoencoderKLConfig
        {
            BlockOutChannels = [32, 32, 32, 32],
            DownBlockTypes = Enumerable.Repeat(AutoencoderKLConfig.DownEncoderBlockType, 4).ToArray(),
            UpBlockTypes = Enumerable.Repeat(AutoencoderKLConfig.UpDecoderBlockType, 4).ToArray(),
        }, ComponentFactories.Meta);
        Assert.Throws<ArgumentException>(() => vae.Tiling = new VaeTilingOptions(4));
        vae.EnableTiling();
        Assert.Equal(vae.Config.SampleSize, vae.Tiling!.TileSampleSize);
    }

    [Fact]
    public void TileStitchingReassemblesAPointwiseDecoderExactly()
    {
        // A decoder that upsamples each latent pixel to f x f pixels is local, so tiling must change nothing:
        // this checks tile positions, partial edge tiles, crops and the blend weights independently of the VAE.
        using var scope = torch.NewDisposeScope();
        const int f = 4;
        var geometry = new VaeTilingOptions(32).Geometry(f);
        Func<torch.Tensor, torch.Tensor> upsample = z => z.repeat_interleave(f, dim: 2).repeat_interleave(f, dim: 3);
        var latents = torch.randn([2, 3, 19, 29], generator: new torch.Generator(8));

        var tiled = VaeTiledDecoder.Decode(latents, geometry, upsample);

        Assert.Equal([2L, 3, 19 * f, 29 * f], tiled.shape);
        Assert.True(MaxAbs(tiled, upsample(latents)) <= 1e-6);
    }

    [Fact]
    public void TiledDecodeFollowsTheReferenceAlgorithm()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var vae = VaeTestModels.LoadSd2();
        var latents = torch.randn([2, 4, 28, 44], generator: new torch.Generator(9));

        var expected = ReferenceTiledDecode(vae, latents, tileSampleSize: 32, overlapFactor: 0.25);
        vae.Tiling = new VaeTilingOptions(32);
        var tiled = vae.Decode(latents);

        Assert.Equal(expected.shape, tiled.shape);
        Assert.True(MaxAbs(tiled, expected) <= 1e-6, $"differs by {MaxAbs(tiled, expected):g3}");
    }

    [Fact]
    public void TilesLargerThanTheLatentChangeNothing()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var vae = VaeTestModels.LoadSd2();
        var latents = torch.randn([1, 4, 12, 16], generator: new torch.Generator(10));
        var untiled = vae.Decode(latents);
        vae.Tiling = new VaeTilingOptions(32); // 16 latent pixels: not exceeded
        Assert.Equal(untiled.contiguous().bytes.ToArray(), vae.Decode(latents).contiguous().bytes.ToArray());
    }

    [Fact]
    public void TiledDecodeIsCloseToUntiledAndCloserWithLargerTiles()
    {
        // Tolerance: each tile's GroupNorm statistics and mid-block attention see only that tile, and these tiny
        // VAEs have random weights, which amplify such differences far more than a trained VAE does. Measured on this
        // input (tiny-sd2, N(0,1) latents 64x96; mean |tiled - untiled| in units of std(untiled)): 0.39 with 32-pixel
        // tiles, 0.12 with 128-pixel tiles, against 1.04 between decodes of unrelated latents. The bounds sit between
        // those numbers; exactness of the tiling itself is checked by TiledDecodeFollowsTheReferenceAlgorithm.
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var vae = VaeTestModels.LoadSd2();
        var latents = torch.randn([1, 4, 64, 96], generator: new torch.Generator(12));
        var untiled = vae.Decode(latents);
        double std = untiled.std().item<float>();

        vae.Tiling = new VaeTilingOptions(32);
        double smallTiles = untiled.sub(vae.Decode(latents)).abs().mean().item<float>() / std;
        vae.Tiling = new VaeTilingOptions(128);
        double largeTiles = untiled.sub(vae.Decode(latents)).abs().mean().item<float>() / std;
        vae.Tiling = null;
        double unrelated = untiled.sub(vae.Decode(torch.randn([1, 4, 64, 96], generator: new torch.Generator(14)))).abs().mean().item<float>() / std;
        output.WriteLine($"mean |tiled - untiled| / std(untiled): 32-pixel tiles {smallTiles:g3}, 128-pixel tiles {largeTiles:g3}; unrelated latents {unrelated:g3}");

        Assert.True(unrelated > 0.8, $"unrelated latents decode only {unrelated:g3} std apart: the bounds below would mean nothing");
        Assert.True(largeTiles < 0.2, $"mean error with 128-pixel tiles is {largeTiles:g3} std");
        Assert.True(smallTiles < 0.6, $"mean error with 32-pixel tiles is {smallTiles:g3} std");
        Assert.True(largeTiles < smallTiles / 2, $"larger tiles should be much closer ({largeTiles:g3} vs {smallTiles:g3})");
    }

    [Fact]
    public void TiledDecodeIsDifferentiable()
    {
        using var scope = torch.NewDisposeScope();
        using var vae = VaeTestModels.LoadSd2();
        var latents = torch.randn([1, 4, 20, 20], generator: new torch.Generator(13)).requires_grad_();
        vae.Tiling = new VaeTilingOptions(16);
        vae.Decode(latents).pow(Kept(2)).mean().backward();
        Assert.NotNull(latents.grad);
        Assert.True(latents.grad!.abs().sum().item<float>() > 0);
    }

    /// <summary>diffusers' tiled_decode written out literally (row loops, in-place blends of the stored tiles).</summary>
    private static torch.Tensor ReferenceTiledDecode(AutoencoderKL vae, torch.Tensor z, int tileSampleSize, double overlapFactor)
    {
        int tileLatent = tileSampleSize / vae.DownsampleFactor;
        int overlap = (int)(tileLatent * (1 - overlapFactor));
        int blend = (int)(tileSampleSize * overlapFactor);
        int rowLimit = tileSampleSize - blend;
        var rows = new List<List<torch.Tensor>>();
        for (long i = 0; i < z.shape[2]; i += overlap)
        {
            var row = new List<torch.Tensor>();
            for (long j = 0; j < z.shape[3]; j += overlap)
            {
                var tile = z[.., .., (int)i..(int)Math.Min(i + tileLatent, z.shape[2]), (int)j..(int)Math.Min(j + tileLatent, z.shape[3])];
                row.Add(vae.Decode(tile).clone());
            }
            rows.Add(row);
        }
        var resultRows = new List<torch.Tensor>();
        for (int i = 0; i < rows.Count; i++)
        {
            var resultRow = new List<torch.Tensor>();
            for (int j = 0; j < rows[i].Count; j++)
            {
                var tile = rows[i][j];
                if (i > 0)
                {
                    var a = rows[i - 1][j];
                    long e = Math.Min(Math.Min(a.shape[2], tile.shape[2]), blend);
                    for (long y = 0; y < e; y++)
                        tile[.., .., (int)y, ..] = a[.., .., (int)(a.shape[2] - e + y), ..].mul(Kept(1 - (double)y / e)).add(tile[.., .., (int)y, ..].mul(Kept((double)y / e)), One);
                }
                if (j > 0)
                {
                    var a = rows[i][j - 1];
                    long e = Math.Min(Math.Min(a.shape[3], tile.shape[3]), blend);
                    for (long x = 0; x < e; x++)
                        tile[.., .., .., (int)x] = a[.., .., .., (int)(a.shape[3] - e + x)].mul(Kept(1 - (double)x / e)).add(tile[.., .., .., (int)x].mul(Kept((double)x / e)), One);
                }
                resultRow.Add(tile[.., .., ..(int)Math.Min(rowLimit, tile.shape[2]), ..(int)Math.Min(rowLimit, tile.shape[3])]);
            }
            resultRows.Add(torch.cat(resultRow.ToArray(), dim: 3));
        }
        return torch.cat(resultRows.ToArray(), dim: 2);
    }

    private static double MaxAbs(torch.Tensor a, torch.Tensor b) => a.sub(b).abs().max().item<float>();
}
