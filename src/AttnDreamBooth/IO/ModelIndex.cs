namespace AttnDreamBooth.IO;

/// <summary>One entry of <c>model_index.json</c>: the library and class of a pipeline component.</summary>
/// <param name="Name">The component's folder name, e.g. <c>unet</c>.</param>
/// <param name="Library">e.g. <c>diffusers</c> or <c>transformers</c>.</param>
/// <param name="ClassName">e.g. <c>UNet2DConditionModel</c>.</param>
internal sealed record PipelineComponent(string Name, string Library, string ClassName);

/// <summary>The contents of a diffusers pipeline's <c>model_index.json</c>.</summary>
/// <param name="ClassName">The pipeline class, e.g. <c>StableDiffusionPipeline</c>.</param>
/// <param name="DiffusersVersion">The diffusers version that wrote it, when recorded.</param>
/// <param name="Components">The non-null components, by folder name.</param>
internal sealed record ModelIndex(string ClassName, string? DiffusersVersion, IReadOnlyDictionary<string, PipelineComponent> Components)
{
    /// <summary>Reads and validates <c>model_index.json</c>.</summary>
    public static ModelIndex Load(string path)
    {
        var config = ConfigReader.Load(path);
        string className = config.GetString("_class_name");
        var components = new Dictionary<string, PipelineComponent>(StringComparer.Ordinal);
        foreach (var property in config.Root.EnumerateObject())
        {
            if (property.Name.StartsWith('_') || property.Value.ValueKind != System.Text.Json.JsonValueKind.Array) continue;
            var parts = property.Value.EnumerateArray().ToArray();
            if (parts.Length != 2)
                throw new ModelConfigException(config.FilePath, property.Name, "expected a [library, class] pair");
            if (parts[0].ValueKind == System.Text.Json.JsonValueKind.Null || parts[1].ValueKind == System.Text.Json.JsonValueKind.Null) continue;
            if (parts[0].ValueKind != System.Text.Json.JsonValueKind.String || parts[1].ValueKind != System.Text.Json.JsonValueKind.String)
                throw new ModelConfigException(config.FilePath, property.Name, "expected a [library, class] pair of strings");
            components[property.Name] = new PipelineComponent(property.Name, parts[0].GetString()!, parts[1].GetString()!);
        }
        return new ModelIndex(className, config.GetNullableString("_diffusers_version"), components);
    }
}
