using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace AttnDreamBooth.Tests.IO;

/// <summary>Checks that a written JSON file spells every key in snake_case.</summary>
internal static partial class SnakeCaseJson
{
    [GeneratedRegex("^[a-z0-9_]+$")]
    private static partial Regex SnakeCase();

    /// <summary>Every key of <paramref name="json"/> (at any depth); asserts that each is snake_case and returns them. The
    /// keys of objects under a property named in <paramref name="dataObjects"/> are data (a dictionary's keys), not checked.</summary>
    public static IReadOnlyList<string> AssertKeys(string json, params string[] dataObjects)
    {
        var keys = new List<string>();
        Collect(JsonNode.Parse(json), keys, dataObjects, isData: false);
        Assert.NotEmpty(keys);
        Assert.All(keys, k => Assert.Matches(SnakeCase(), k));
        return keys;
    }

    private static void Collect(JsonNode? node, List<string> keys, string[] dataObjects, bool isData)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o)
                {
                    if (!isData) keys.Add(key);
                    Collect(value, keys, dataObjects, isData: !isData && dataObjects.Contains(key));
                }
                break;
            case JsonArray a:
                foreach (var item in a) Collect(item, keys, dataObjects, isData: false);
                break;
        }
    }
}
