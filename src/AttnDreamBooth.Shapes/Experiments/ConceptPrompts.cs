namespace AttnDreamBooth.Shapes.Experiments;

/// <summary>Prompts that ask for a concept in contexts its photos never showed.</summary>
public static class ConceptPrompts
{
    /// <summary>
    /// For every background of the world that is not among the concept's photo backgrounds and that the concept contrasts
    /// with (in the world's order): "a photo of a {} [background]" and "a photo of a {} [position] [background]", the
    /// positions taken in turn from the world's list, so every background and every position is asked for.
    /// </summary>
    public static IReadOnlyList<ConceptPrompt> NewContexts(ShapesWorld world, ConceptSpec concept)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(concept);
        var prompts = new List<ConceptPrompt>();
        var backgrounds = world.Backgrounds.Where(b => !concept.Photos.Backgrounds.Contains(b) && concept.ContrastsWith(b, world)).ToList();
        for (int i = 0; i < backgrounds.Count; i++)
        {
            var background = backgrounds[i];
            var position = world.Positions[i % world.Positions.Count];
            prompts.Add(new ConceptPrompt($"a photo of a {{}} {background.Phrase}", background, null));
            prompts.Add(new ConceptPrompt($"a photo of a {{}} {position.Phrase} {background.Phrase}", background, position));
        }
        return prompts;
    }
}
