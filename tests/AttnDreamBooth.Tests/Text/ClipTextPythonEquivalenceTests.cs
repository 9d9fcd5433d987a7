using System.Text.Json;
using AttnDreamBooth.Text;

namespace AttnDreamBooth.Tests.Text;

/// <summary>Cleaning and word splitting against Python on 1,500 random strings of awkward Unicode (controls, format
/// characters, every kind of space, Greek with final sigma, Turkish dotted I, combining marks incl. U+0345, CJK and
/// compatibility ideographs, characters outside the BMP, contractions, literal special tokens in odd case).
/// TestData/clip_text_fuzz.json is written by TestData/make_clip_text_fuzz.py.</summary>
public sealed class ClipTextPythonEquivalenceTests
{
    [Fact]
    public void CleanerAndPreTokenizerMatchPython()
    {
        string path = Path.Combine(TestPaths.RepoRoot, "tests", "AttnDreamBooth.Tests", "Text", "TestData", "clip_text_fuzz.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().ToArray();
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
