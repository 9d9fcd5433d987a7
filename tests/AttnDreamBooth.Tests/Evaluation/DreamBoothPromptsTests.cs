using AttnDreamBooth.Evaluation;

namespace AttnDreamBooth.Tests.Evaluation;

public sealed class DreamBoothPromptsTests
{
    private static string DatasetFile => Path.Combine(TestPaths.RepoRoot, "tests", "AttnDreamBooth.Tests", "Evaluation", "Data", "prompts_and_classes.txt");

    [Fact]
    public void BuiltInListsEqualTheDatasetFileRewrittenToThePlaceholder()
    {
        var parsed = DreamBoothPrompts.Parse(File.ReadAllText(DatasetFile));
        Assert.Equal(parsed.ObjectPrompts, DreamBoothPrompts.Object);
        Assert.Equal(parsed.LiveSubjectPrompts, DreamBoothPrompts.LiveSubject);
        Assert.Equal(25, DreamBoothPrompts.Object.Count);
        Assert.Equal(25, DreamBoothPrompts.LiveSubject.Count);
        Assert.All(DreamBoothPrompts.Object.Concat(DreamBoothPrompts.LiveSubject), p => Assert.Single(p.Split("{}")[1..]));
        Assert.Equal("a {} in the jungle", DreamBoothPrompts.Object[0]);
        Assert.Equal("a {} wearing a red hat", DreamBoothPrompts.LiveSubject[10]);
        Assert.Equal("dog", parsed.Classes["dog6"]);
        Assert.Equal("stuffed animal", parsed.Classes["bear_plushie"]);
    }

    [Fact]
    public void CategoriesChooseTheListAsTheDatasetDoes()
    {
        var parsed = DreamBoothPrompts.Parse(File.ReadAllText(DatasetFile));
        // In the dataset, exactly the dogs and cats are live subjects.
        foreach (var (subject, category) in parsed.Classes)
        {
            bool live = category is "dog" or "cat";
            Assert.Equal(live ? SubjectKind.LiveSubject : SubjectKind.Object, DreamBoothPrompts.KindOf(category));
        }
        Assert.Equal(SubjectKind.LiveSubject, DreamBoothPrompts.KindOf(" Dog "));
        Assert.Equal(SubjectKind.Object, DreamBoothPrompts.KindOf("stuffed animal"));
    }

    [Fact]
    public void APromptFileGivesTheListOfTheConceptsKind()
    {
        string text = File.ReadAllText(DatasetFile);
        Assert.Equal(DreamBoothPrompts.LiveSubject, EvaluationProtocol.FromPromptFile(text, "dog").Prompts);
        Assert.Equal(DreamBoothPrompts.Object, EvaluationProtocol.FromPromptFile(text, "stuffed animal").Prompts);
        Assert.Throws<FormatException>(() => EvaluationProtocol.FromPromptFile("Object Prompts\nnot a list", "dog"));
    }

    [Fact]
    public void PaperProtocolAndExpansion()
    {
        var protocol = EvaluationProtocol.Paper("cat");
        Assert.Same(DreamBoothPrompts.LiveSubject, protocol.Prompts);
        Assert.Equal((50, 7.5, 16, "DPMSolverMultistepScheduler"), (protocol.InferenceSteps, protocol.GuidanceScale, protocol.ImagesPerPrompt, protocol.Sampler));
        Assert.Same(DreamBoothPrompts.Object, EvaluationProtocol.Paper("teapot").Prompts);
        Assert.Equal("a sks cat in the jungle", protocol.ExpandPrompts("sks", "cat")[0]);
        Assert.Throws<ArgumentException>(() => EvaluationProtocol.WithPrompts(["a photo of a dog"]));
        Assert.Equal(["a {} at night"], EvaluationProtocol.WithPrompts(["a {} at night"]).Prompts);
    }

    [Fact]
    public void MalformedPromptFilesAreRejected()
    {
        Assert.Throws<FormatException>(() => DreamBoothPrompts.Parse("Object Prompts\nprompt_list = [\n'a {0} in the snow'.format(unique_token),\n]"));
        Assert.Throws<FormatException>(() => DreamBoothPrompts.Parse("Classes\nsubject_name,class\ndog,dog\n"));
    }
}
