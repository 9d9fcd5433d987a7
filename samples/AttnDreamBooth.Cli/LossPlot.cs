using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Series;
using OxyPlot.SkiaSharp;

namespace AttnDreamBooth.Cli;

/// <summary>Renders the training loss curve to a PNG.</summary>
internal static class LossPlot
{
    public static void Save(IReadOnlyList<double> losses, IReadOnlyList<(int Start, string Label)> stages, string path)
    {
        var model = Build(losses, stages);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        AttnDreamBooth.IO.AtomicFile.Write(full, stream => new PngExporter { Width = 800, Height = 450 }.Export(model, stream));
    }

    /// <summary>The plot: the loss per step, and a labelled dashed line where each stage starts.</summary>
    internal static PlotModel Build(IReadOnlyList<double> losses, IReadOnlyList<(int Start, string Label)> stages)
    {
        var model = new PlotModel { Title = "AttnDreamBooth training loss", Background = OxyColors.White };
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Bottom, Title = "step", MajorGridlineStyle = LineStyle.Dot });
        model.Axes.Add(new LinearAxis { Position = AxisPosition.Left, Title = "loss (MSE + attention)", MajorGridlineStyle = LineStyle.Dot });
        var series = new LineSeries { Title = "loss", StrokeThickness = 1.5 };
        for (int i = 0; i < losses.Count; i++) series.Points.Add(new DataPoint(i + 1, losses[i]));
        model.Series.Add(series);
        foreach (var (start, label) in stages)
        {
            model.Annotations.Add(new OxyPlot.Annotations.LineAnnotation
            {
                Type = OxyPlot.Annotations.LineAnnotationType.Vertical,
                X = start + 0.5,
                Color = OxyColors.Gray,
                LineStyle = LineStyle.Dash,
                Text = label,
                TextOrientation = OxyPlot.Annotations.AnnotationTextOrientation.Horizontal,
                TextHorizontalAlignment = OxyPlot.HorizontalAlignment.Left,
            });
        }
        return model;
    }
}
