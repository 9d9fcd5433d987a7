using AttnDreamBooth.Evaluation;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Text;

/// <summary>The one prompt expander's rules, and that every public expander follows them.</summary>
public sealed class PromptPlaceholdersTests
{
    [Theory]
    [InlineData("a {} in the snow", "sks", "dog", "a sks dog in the snow")]
    [InlineData("a {token} next to another {category}", "sks", "dog", "a sks next to another dog")]
    [InlineData("{} and {}", "sks", "dog", "sks dog and sks dog")]
    [InlineData("a house in {}", "style", "", "a house in style")]
    [InlineData("a plain prompt", "sks", "dog", "a plain prompt")]
    [InlineData("a plain prompt", null, "", "a plain prompt")]
    public void ExpandsThePlaceholders(string prompt, string? token, string category, string expected) =>
        Assert.Equal(expected, PromptPlaceholders.Expand(prompt, token, category));

    [Theory]
    [InlineData("a {V} dog")]
    [InlineData("a {tok} dog")]
    [InlineData("a } dog")]
    [InlineData("a {{}} dog")]
    public void RefusesOtherPlaceholdersAndStrayBraces(string prompt)
    {
        var error = Assert.Throws<ArgumentException>(() => PromptPlaceholders.Expand(prompt, "sks", "dog"));
        Assert.Contains(prompt, error.Message);
        Assert.Throws<ArgumentException>(() => PromptPlaceholders.Expand(prompt, null, ""));
    }

    [Theory]
    [InlineData("a {} dog")]
    [InlineData("a {token}")]
    [InlineData("a {category}")]
    public void APlaceholderWithoutAConceptIsRefused(string prompt) =>
        Assert.Throws<InvalidOperationException>(() => PromptPlaceholders.Expand(prompt, null, ""));

    [Fact]
    public void TheConceptAndTheEvaluationPromptsExpandAlike()
    {
        var concept = Concept.FromFiles([Path.Combine(TestPaths.RepoRoot, "samples", "data", "dog", "00.jpg")], "dog", "sks");
        foreach (string prompt in new[] { "a {} in the snow", "a {token} next to a {category}", "{} on {}" })
        {
            string expected = PromptPlaceholders.Expand(prompt, "sks", "dog");
            Assert.Equal(expected, concept.ExpandPrompt(prompt));
            if (prompt.Contains("{}", StringComparison.Ordinal)) Assert.Equal(expected, DreamBoothPrompts.Expand(prompt, "sks", "dog"));
        }
        Assert.Throws<ArgumentException>(() => DreamBoothPrompts.Expand("a {V} dog", "sks", "dog"));
    }
}
