namespace AttnDreamBooth.Shapes.Pretraining;

/// <summary>Where <see cref="ShapesQualityGrid"/> puts things: a title and seed header, then per prompt a row of cells (image
/// above its five attribute lines) and the prompt in up to two lines.</summary>
internal readonly record struct QualityGridLayout(int Rows, int Columns, int Scale, int Tile, int TileHeight)
{
    public const int Margin = 8, Header = 50, Gap = 8, LineHeight = 14, PromptLines = 2, PromptLineHeight = 16, RowGap = 12;

    /// <summary>Cells are at least this wide, so five label lines such as "✗ background yellow → night" fit.</summary>
    public const int MinTile = 180;

    /// <summary>The prompt lines need this much width even with a single seed.</summary>
    public const int MinContentWidth = 420;

    public static QualityGridLayout For(int rows, int columns, int imageWidth, int imageHeight)
    {
        int scale = Math.Clamp((MinTile + imageWidth - 1) / imageWidth, 1, 16);
        return new QualityGridLayout(rows, columns, scale, imageWidth * scale, imageHeight * scale);
    }

    public int Width => 2 * Margin + Math.Max(Columns * Tile + (Columns - 1) * Gap, MinContentWidth);

    public int RowHeight => TileHeight + 4 + ShapesModelQuality.AttributeNames.Count * LineHeight + PromptLines * PromptLineHeight + RowGap;

    public int Height => Header + Rows * RowHeight + Margin;

    public int CellX(int column) => Margin + column * (Tile + Gap);

    public int CellY(int row) => Header + row * RowHeight;

    public float LabelBaseline(int row, int line) => CellY(row) + TileHeight + 4 + (line + 1) * LineHeight - 3;

    public float PromptBaseline(int row, int line) =>
        CellY(row) + TileHeight + 4 + ShapesModelQuality.AttributeNames.Count * LineHeight + (line + 1) * PromptLineHeight - 3;
}
