namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// One parity check ("&lt;case&gt;/&lt;Name&gt;"). Implementations are discovered by reflection: add a class, and it
/// runs on every case it applies to. A check claims reference tensors; running it must read or compare every
/// claimed tensor, and the per-case coverage test fails when a tensor of a covered component is claimed by no
/// check.
/// </summary>
public interface IParityCheck
{
    /// <summary>The check's name, e.g. "unet".</summary>
    string Name { get; }

    /// <summary>The manifest component values whose tensors this check is responsible for (e.g. "unet").</summary>
    IReadOnlyCollection<string> Components { get; }

    /// <summary>Whether the case has what this check compares (its kind and its reference tensors).</summary>
    bool AppliesTo(FixtureCase fixture);

    /// <summary>The reference tensors this check uses on <paramref name="fixture"/>.</summary>
    IEnumerable<string> Claims(FixtureCase fixture);

    /// <summary>Runs the comparison; throws on mismatch.</summary>
    void Run(ParityContext context);
}
