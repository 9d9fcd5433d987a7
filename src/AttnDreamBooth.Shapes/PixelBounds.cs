namespace AttnDreamBooth.Shapes;

/// <summary>An axis-aligned pixel rectangle [Left, Left + Width) × [Top, Top + Height).</summary>
/// <param name="Left">First column.</param>
/// <param name="Top">First row.</param>
/// <param name="Width">Columns.</param>
/// <param name="Height">Rows.</param>
public readonly record struct PixelBounds(int Left, int Top, int Width, int Height)
{
    /// <summary>Horizontal centre in pixels.</summary>
    public double CenterX => Left + Width / 2.0;

    /// <summary>Vertical centre in pixels.</summary>
    public double CenterY => Top + Height / 2.0;

    /// <summary>The longer side in pixels.</summary>
    public int LongerSide => Math.Max(Width, Height);
}
