namespace AttnDreamBooth.Models.Vae;

/// <summary>
/// Tiled decoding (diffusers' <c>tiled_decode</c>): latents larger than one tile are decoded tile by tile; tiles
/// overlap and each tile's first rows/columns are blended linearly with the tile above/left, so memory stays
/// bounded by the tile size. The result is close to, not equal to, untiled decoding (each tile's mid-block
/// attention and GroupNorm statistics see only that tile).
/// </summary>
internal sealed record VaeTilingOptions
{
    /// <summary>Creates options with a tile of <paramref name="tileSampleSize"/> image pixels and the given overlap.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When the tile is not positive or the overlap not in [0, 1).</exception>
    public VaeTilingOptions(int tileSampleSize, double overlapFactor = 0.25)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(tileSampleSize, 0);
        if (!(overlapFactor >= 0 && overlapFactor < 1))
            throw new ArgumentOutOfRangeException(nameof(overlapFactor), overlapFactor, "The overlap factor must be in [0, 1).");
        TileSampleSize = tileSampleSize;
        OverlapFactor = overlapFactor;
    }

    /// <summary>The tile edge in image pixels (diffusers: <c>tile_sample_min_size</c> = config <c>sample_size</c>).
    /// Tiling applies when the latent height or width exceeds <c>TileSampleSize / DownsampleFactor</c>.</summary>
    public int TileSampleSize { get; }

    /// <summary>The fraction of a tile shared with its neighbour (diffusers: 0.25).</summary>
    public double OverlapFactor { get; }

    /// <summary>The tile geometry for a VAE with the given spatial factor.</summary>
    internal TileGeometry Geometry(int downsampleFactor)
    {
        int latentTile = TileSampleSize / downsampleFactor;
        if (latentTile < 1)
            throw new ArgumentException($"A tile of {TileSampleSize} pixels is smaller than one latent pixel ({downsampleFactor} pixels).", nameof(TileSampleSize));
        int latentStride = (int)(latentTile * (1 - OverlapFactor));
        if (latentStride < 1)
            throw new ArgumentException($"A tile of {latentTile} latent pixels with overlap {OverlapFactor} leaves no stride between tiles.", nameof(OverlapFactor));
        // diffusers keeps row_limit = tile - int(tile * overlap) image pixels per tile; deriving it from the latent
        // stride gives the same numbers whenever diffusers' sizes add up (SD: 512 → 384 = 48 * 8) and the right
        // output size when they would not.
        int rowLimit = latentStride * downsampleFactor;
        int blendExtent = latentTile * downsampleFactor - rowLimit;
        return new TileGeometry(latentTile, latentStride, rowLimit, blendExtent);
    }
}

/// <summary>Tile sizes in latent and image pixels.</summary>
internal readonly record struct TileGeometry(int LatentTile, int LatentStride, int RowLimit, int BlendExtent);
