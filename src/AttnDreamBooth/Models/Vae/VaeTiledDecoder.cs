using TorchSharp;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// The tile loop of diffusers' <c>tiled_decode</c>: overlapping latent tiles are decoded independently; each
/// tile's first <c>BlendExtent</c> rows are cross-faded with the last rows of the (already blended) tile above
/// and its first columns with the tile to the left, then the top-left <c>RowLimit</c> x <c>RowLimit</c> pixels of
/// every tile are stitched together. Written without in-place writes so it stays differentiable.
/// </summary>
internal static class VaeTiledDecoder
{
    public static Tensor Decode(Tensor latents, TileGeometry g, Func<Tensor, Tensor> decodeTile)
    {
        using var scope = NewDisposeScope();
        long height = latents.shape[2], width = latents.shape[3];
        var rows = new List<List<Tensor>>();
        for (long y = 0; y < height; y += g.LatentStride)
        {
            var row = new List<Tensor>();
            for (long x = 0; x < width; x += g.LatentStride)
            {
                var tile = latents.narrow(2, y, Math.Min(g.LatentTile, height - y)).narrow(3, x, Math.Min(g.LatentTile, width - x));
                row.Add(decodeTile(tile));
            }
            rows.Add(row);
        }

        var stitchedRows = new List<Tensor>();
        for (int i = 0; i < rows.Count; i++)
        {
            var pieces = new List<Tensor>();
            for (int j = 0; j < rows[i].Count; j++)
            {
                // Replacing the list entry mirrors the reference, whose in-place blend makes later neighbours see
                // the blended tile.
                if (i > 0) rows[i][j] = Blend(rows[i - 1][j], rows[i][j], g.BlendExtent, dim: 2);
                if (j > 0) rows[i][j] = Blend(rows[i][j - 1], rows[i][j], g.BlendExtent, dim: 3);
                var tile = rows[i][j];
                pieces.Add(tile.narrow(2, 0, Math.Min(g.RowLimit, tile.shape[2])).narrow(3, 0, Math.Min(g.RowLimit, tile.shape[3])));
            }
            stitchedRows.Add(cat(pieces.ToArray(), dim: 3));
        }
        return cat(stitchedRows.ToArray(), dim: 2).MoveToOuterDisposeScope();
    }

    /// <summary>b with its first <paramref name="extent"/> slices along <paramref name="dim"/> replaced by
    /// a[-extent + k] * (1 - k / extent) + b[k] * (k / extent).</summary>
    private static Tensor Blend(Tensor a, Tensor b, int extent, int dim)
    {
        long e = Math.Min(Math.Min(a.shape[dim], b.shape[dim]), extent);
        if (e == 0) return b;
        var shape = Enumerable.Repeat(1L, (int)b.dim()).ToArray();
        shape[dim] = e;
        var weight = arange(Kept(0), Kept(e), Kept(1), dtype: float64, device: b.device).div(Kept(e)).to_type(b.dtype).reshape(shape);
        var head = a.narrow(dim, a.shape[dim] - e, e).mul(weight.neg().add(Kept(1), One)).add(b.narrow(dim, 0, e).mul(weight), One);
        var rest = b.narrow(dim, e, b.shape[dim] - e);
        return cat([head, rest], dim);
    }
}
