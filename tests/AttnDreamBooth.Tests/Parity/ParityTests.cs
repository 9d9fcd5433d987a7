using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// Runs every parity check on every case folder of every fixture root. Display argument: "&lt;case&gt;/&lt;check&gt;".
/// </summary>
[Trait("Category", "Parity")]
public sealed class ParityTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var fixture in FixtureRoots.Cases.Values)
        {
            if (!ParityChecks.KnownKinds.Contains(fixture.Kind))
            {
                data.Add($"{fixture.Name}/case-kind");
                continue;
            }
            foreach (var check in ParityChecks.All.Where(c => c.AppliesTo(fixture))) data.Add($"{fixture.Name}/{check.Name}");
            data.Add($"{fixture.Name}/coverage");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Parity(string caseAndCheck)
    {
        int slash = caseAndCheck.LastIndexOf('/');
        var fixture = FixtureRoots.Get(caseAndCheck[..slash]);
        string checkName = caseAndCheck[(slash + 1)..];
        switch (checkName)
        {
            case "case-kind":
                throw new XunitException($"Case folder '{fixture.Folder}' has case_kind '{fixture.Kind}', which no check knows (known: {string.Join(", ", ParityChecks.KnownKinds)}).");
            case "coverage":
                AssertCoverage(fixture);
                return;
        }
        var check = ParityChecks.Get(checkName);
        using var context = new ParityContext(fixture);
        check.Run(context);
        var unused = check.Claims(fixture).Where(n => !context.Touched.Contains(n)).ToArray();
        if (unused.Length > 0)
            throw new XunitException($"{caseAndCheck} claims tensors it never read or compared: {string.Join(", ", unused)}");
    }

    private static void AssertCoverage(FixtureCase fixture)
    {
        var applicable = ParityChecks.All.Where(c => c.AppliesTo(fixture)).ToArray();
        var covered = new HashSet<string>(ParityChecks.All.SelectMany(c => c.Components), StringComparer.Ordinal);
        var claimed = new HashSet<string>(applicable.SelectMany(c => c.Claims(fixture)), StringComparer.Ordinal);
        foreach (string name in claimed)
        {
            if (!fixture.HasTensor(name)) throw new XunitException($"{fixture.Name}: a check claims '{name}', which reference.json does not have");
        }
        var unchecked_ = fixture.Manifest.Tensors.Values
            .Where(t => covered.Contains(t.Component) && !claimed.Contains(t.Name))
            .Select(t => $"{t.Name} ({t.Component})")
            .OrderBy(n => n, StringComparer.Ordinal)
            .ToArray();
        if (unchecked_.Length > 0)
            throw new XunitException($"{fixture.Name}: {unchecked_.Length} tensors of implemented components are checked by nothing: {string.Join(", ", unchecked_)}");
    }
}
