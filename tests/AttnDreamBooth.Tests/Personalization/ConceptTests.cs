using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class ConceptTests
{
    private static readonly ImageSource[] OneImage = [ImageSource.FromBytes("x.png", [1, 2, 3])];

    [Fact]
    public void Defaults_follow_the_official_code()
    {
        var c = new Concept(OneImage, "dog");
        Assert.Equal("new_concept_v0", c.Token);
        Assert.Equal("a photo of a {token} {category}", c.PromptTemplate);
        Assert.Equal("a photo of a new_concept_v0 dog", c.TrainingPrompt);
        Assert.Equal("a photo of a sks stuffed animal", new Concept(OneImage, " stuffed animal ", "sks").TrainingPrompt);
        Assert.Equal("a photo of a sks dog", c.WithToken("sks").TrainingPrompt);
    }

    [Theory]
    [InlineData("a photo of a {token}")]                          // no category
    [InlineData("a photo of a {category}")]                       // no token
    [InlineData("{token} {token} {category}")]                    // token twice
    [InlineData("a {token} {category} in {style}")]               // unknown placeholder
    [InlineData("a {token} {category} }")]                        // stray brace
    [InlineData("a {} {category}")]                               // generation shorthand is not a template placeholder
    public void Invalid_templates_are_rejected(string template)
    {
        var ex = Assert.Throws<ArgumentException>(() => new Concept(OneImage, "dog", promptTemplate: template));
        Assert.Equal("promptTemplate", ex.ParamName);
        Assert.Contains(template, ex.Message);
    }

    [Fact]
    public void Category_before_token_is_a_valid_template()
    {
        Assert.Equal("a dog called new_concept_v0", new Concept(OneImage, "dog", promptTemplate: "a {category} called {token}").TrainingPrompt);
    }

    [Theory]
    [InlineData("")]
    [InlineData("two words")]
    [InlineData("{token}")]
    public void Invalid_tokens_are_rejected(string token) =>
        Assert.Equal("token", Assert.Throws<ArgumentException>(() => new Concept(OneImage, "dog", token)).ParamName);

    [Fact]
    public void Empty_category_and_no_images_are_rejected()
    {
        Assert.Equal("category", Assert.Throws<ArgumentException>(() => new Concept(OneImage, "  ")).ParamName);
        Assert.Equal("images", Assert.Throws<ArgumentException>(() => new Concept([], "dog")).ParamName);
    }

    [Fact]
    public void Generation_prompts_expand_the_official_shorthand()
    {
        var c = new Concept(OneImage, "dog");
        Assert.Equal("a new_concept_v0 dog in the snow", c.ExpandPrompt("a {} in the snow"));
        Assert.Equal("a new_concept_v0 next to another dog", c.ExpandPrompt("a {token} next to another {category}"));
        Assert.Equal("a plain prompt", c.ExpandPrompt("a plain prompt"));
        Assert.Throws<ArgumentException>(() => c.ExpandPrompt("a {0} dog"));
        Assert.Throws<ArgumentException>(() => c.ExpandPrompt("a {{}} dog"));
    }

    [Fact]
    public void Folder_picks_image_files_in_name_order_and_ignores_other_files()
    {
        using var dir = TestPaths.CreateTempDirectory();
        foreach (var name in new[] { "b.png", "a.JPG", "c.webp", "d.gif", "LICENSE.md", "notes.txt", ".hidden.png" })
            File.WriteAllBytes(dir.File(name), [0]);
        var c = Concept.FromFolder(dir.Path, "dog");
        Assert.Equal(["a.JPG", "b.png", "c.webp", "d.gif"], c.Images.Select(i => Path.GetFileName(i.Name)));
        Assert.All(c.Images, i => Assert.True(Path.IsPathFullyQualified(i.Name)));
    }

    [Fact]
    public void Folder_errors_name_the_folder()
    {
        using var dir = TestPaths.CreateTempDirectory();
        Assert.Throws<DirectoryNotFoundException>(() => Concept.FromFolder(dir.File("missing"), "dog"));
        File.WriteAllText(dir.File("readme.txt"), "no images");
        Assert.Contains(dir.Path, Assert.Throws<ArgumentException>(() => Concept.FromFolder(dir.Path, "dog")).Message);
    }

    [Fact]
    public void Streams_are_captured_and_named()
    {
        using var s0 = new MemoryStream([1, 2, 3]);
        using var s1 = new MemoryStream([4, 5]);
        var c = Concept.FromStreams([s0, s1], "cat");
        Assert.Equal(["stream 0", "stream 1"], c.Images.Select(i => i.Name));
        Assert.Equal(new byte[] { 4, 5 }, c.Images[1].ReadAllBytes(long.MaxValue));
        Assert.Null(c.Images[1].FilePath);
    }
}
