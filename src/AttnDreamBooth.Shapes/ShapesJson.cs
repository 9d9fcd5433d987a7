using System.Text.Json.Nodes;

namespace AttnDreamBooth.Shapes;

/// <summary>JSON views of scenes, analyses and identities (attribute names, fractions and pixels), as written by the CLI's <c>shapes render</c> and <c>shapes analyze</c>.</summary>
public static class ShapesJson
{
    /// <summary>The scene: background name and seed, and per object its attribute names and geometry (fractions of the image side).</summary>
    public static JsonObject Scene(Scene scene)
    {
        ArgumentNullException.ThrowIfNull(scene);
        return new JsonObject
        {
            ["background"] = scene.Background.Name,
            ["background_seed"] = scene.BackgroundSeed,
            ["objects"] = new JsonArray([.. scene.Objects.Select(o =>
            {
                var node = new JsonObject
                {
                    ["shape"] = o.Shape.Name,
                    ["color"] = o.Color.Name,
                    ["pattern"] = o.Pattern.Name,
                    ["size"] = o.Size.Name,
                    ["position"] = o.Position.Name,
                    ["center_x"] = Math.Round(o.CenterX, 5),
                    ["center_y"] = Math.Round(o.CenterY, 5),
                    ["side"] = Math.Round(o.Side, 5),
                };
                if (o.Concept is not null) node["concept"] = true;
                return (JsonNode)node;
            })]),
        };
    }

    /// <summary>The measured background and objects (centroid, bounds and area in pixels).</summary>
    public static JsonObject Analysis(SceneAnalysis analysis)
    {
        ArgumentNullException.ThrowIfNull(analysis);
        return new JsonObject
        {
            ["width"] = analysis.Width,
            ["height"] = analysis.Height,
            ["background"] = analysis.Background.Name,
            ["background_error"] = Math.Round(analysis.BackgroundError, 3),
            ["objects"] = new JsonArray([.. analysis.Objects.Select(o => (JsonNode)new JsonObject
            {
                ["shape"] = o.Shape.Name,
                ["shape_iou"] = Math.Round(o.ShapeIoU, 4),
                ["color"] = o.Color.Name,
                ["color_error"] = Math.Round(o.ColorError, 3),
                ["pattern"] = o.Pattern.Name,
                ["size"] = o.Size.Name,
                ["position"] = o.Position.Name,
                ["centroid"] = new JsonArray(Math.Round(o.CentroidX, 3), Math.Round(o.CentroidY, 3)),
                ["area"] = Math.Round(o.Area, 2),
                ["bounds"] = new JsonArray(o.Bounds.Left, o.Bounds.Top, o.Bounds.Width, o.Bounds.Height),
                ["texture"] = new JsonObject
                {
                    ["ink_fraction"] = Math.Round(o.Texture.InkFraction, 4),
                    ["horizontal_change"] = Math.Round(o.Texture.HorizontalChange, 4),
                    ["vertical_change"] = Math.Round(o.Texture.VerticalChange, 4),
                },
            })]),
        };
    }

    /// <summary>The identity score and its parts.</summary>
    public static JsonObject Identity(ConceptIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        return new JsonObject
        {
            ["score"] = Math.Round(identity.Score, 4),
            ["shape"] = Math.Round(identity.Shape, 4),
            ["palette"] = Math.Round(identity.Palette, 4),
            ["balance"] = Math.Round(identity.Balance, 4),
            ["pattern"] = Math.Round(identity.Pattern, 4),
            ["outline"] = identity.Outline is { } o ? Math.Round(o, 4) : null,
            ["emblem"] = identity.Emblem is { } e ? Math.Round(e, 4) : null,
        };
    }
}
