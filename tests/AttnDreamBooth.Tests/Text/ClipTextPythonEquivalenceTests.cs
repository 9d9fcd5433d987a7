using System.Text.Json;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Text;

/// <summary>Cleaning and word splitting against Python on 1,500 random strings of awkward Unicode (controls, format
/// characters, every kind of space, Greek with final sigma, Turkish dotted I, combining marks incl. U+0345, CJK and
/// compatibility ideographs, characters outside the BMP, contractions, literal special tokens in odd case).
/// TestData/clip_text_fuzz.json is written by TestData/make_clip_text_fuzz.py, which also gives the ids on the tiny-sd1
/// vocabulary (its restatement of CLIPTokenizer reproduces every tokenizer_cases.json prompt).</summary>
public sealed class ClipTextPythonEquivalenceTests
{
    private static JsonElement[] Cases()
    {
        string path = Path.Combine(TestPaths.RepoRoot, "tests", "AttnDreamBooth.Tests", "Text", "TestData", "clip_text_fuzz.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone()).ToArray();
    }

    [Fact]
    public void IdsMatchPython()
    {
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(TestPaths.TinySd1, "tokenizer"));
        var cases = Cases();
        var problems = new List<string>();
        foreach (var c in cases)
        {
            string text = c.GetProperty("text").GetString()!;
            var expected = c.GetProperty("sd1_ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();
            var ids = tokenizer.EncodeWithoutSpecialTokens(text);
            if (!ids.SequenceEqual(expected))
                problems.Add($"{JsonSerializer.Serialize(text)} -> [{string.Join(' ', ids)}], Python [{string.Join(' ', expected)}]");
        }
        Assert.True(problems.Count == 0, $"{problems.Count} of {cases.Length} differ:\n{string.Join("\n", problems.Take(10))}");
    }

    [Fact]
    public void CleanerAndPreTokenizerMatchPython()
    {
        var cases = Cases();
        Assert.True(cases.Length >= 1000);
        var problems = new List<string>();
        foreach (var c in cases)
        {
            string text = c.GetProperty("text").GetString()!;
            string expected = c.GetProperty("cleaned").GetString()!;
            string cleaned = ClipTextCleaner.Instance.Normalize(text);
            if (cleaned != expected)
            {
                problems.Add($"clean {JsonSerializer.Serialize(text)} -> {JsonSerializer.Serialize(cleaned)}, Python {JsonSerializer.Serialize(expected)}");
                continue;
            }
            var words = ClipPreTokenizer.Split(cleaned).Select(w => cleaned.Substring(w.Offset, w.Length)).ToArray();
            var pythonWords = c.GetProperty("words").EnumerateArray().Select(w => w.GetString()!).ToArray();
            if (!words.SequenceEqual(pythonWords))
                problems.Add($"split {JsonSerializer.Serialize(cleaned)} -> {JsonSerializer.Serialize(words)}, Python {JsonSerializer.Serialize(pythonWords)}");
        }
        Assert.True(problems.Count == 0, $"{problems.Count} of {cases.Length} differ:\n{string.Join("\n", problems.Take(10))}");
    }
}
