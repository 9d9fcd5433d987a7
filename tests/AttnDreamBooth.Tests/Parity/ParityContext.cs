using AttnDreamBooth.IO;
using TorchSharp;
using Xunit.Sdk;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>
/// What a parity check sees of its case: reference inputs and expected outputs by name, and a tolerant
/// comparison that reports the tensor, max abs / rel error and the tolerance. Every tensor read or compared is
/// recorded, so the harness can prove a check used everything it claims.
/// </summary>
public sealed class ParityContext : IDisposable
{
    private readonly SafetensorsFile _reference;
    private readonly HashSet<string> _touched = new(StringComparer.Ordinal);

    public ParityContext(FixtureCase fixture)
    {
        Case = fixture;
        _reference = fixture.OpenReference();
    }

    public FixtureCase Case { get; }
    public ReferenceManifest Manifest => Case.Manifest;
    public IReadOnlyCollection<string> Touched => _touched;

    public bool Has(string name) => Manifest.Tensors.ContainsKey(name);

    /// <summary>A reference tensor as stored (an input fed as is, or an expected value).</summary>
    public torch.Tensor Tensor(string name)
    {
        if (!Has(name)) throw new XunitException($"{Case.Name}: reference.json has no tensor '{name}'");
        _touched.Add(name);
        return _reference.ReadTensor(name);
    }

    /// <summary>Compares <paramref name="actual"/> with the reference tensor <paramref name="name"/> under its manifest tolerance.</summary>
    public void AssertClose(string name, torch.Tensor actual)
    {
        using var scope = torch.NewDisposeScope();
        var spec = Manifest.Tensors.TryGetValue(name, out var s) ? s : throw new XunitException($"{Case.Name}: reference.json has no tensor '{name}'");
        var expected = Tensor(name);
        var got = actual.detach().cpu();
        if (!got.shape.SequenceEqual(expected.shape))
            throw new XunitException($"{Case.Name}: '{name}' has shape [{string.Join(", ", got.shape)}], expected [{string.Join(", ", expected.shape)}]");
        if (expected.dtype == torch.int64 || spec.Tolerance.Exact)
        {
            var e = expected.to_type(got.dtype);
            if (!got.eq(e).all().item<bool>())
            {
                long differing = got.ne(e).sum().item<long>();
                double maxAbs = got.to_type(torch.float64).sub(e.to_type(torch.float64)).abs().max().item<double>();
                throw new XunitException($"{Case.Name}: '{name}' must match exactly; {differing} of {e.NumberOfElements} elements differ (max abs error {maxAbs:g4})");
            }
            return;
        }
        var a = got.to_type(torch.float64);
        var x = expected.to_type(torch.float64);
        if (!a.isfinite().all().item<bool>())
            throw new XunitException($"{Case.Name}: '{name}' contains NaN or Inf");
        var diff = a.sub(x).abs();
        var bound = x.abs().mul(Kept(spec.Tolerance.Rtol)).add(Kept(spec.Tolerance.Atol), One);
        double maxAbsErr = diff.max().item<double>();
        double maxRel = diff.div(x.abs().clamp_min(Kept(1e-30))).max().item<double>();
        if (!diff.le(bound).all().item<bool>())
        {
            long failing = diff.gt(bound).sum().item<long>();
            throw new XunitException(
                $"{Case.Name}: '{name}' is outside tolerance ({spec.Tolerance}): max abs error {maxAbsErr:g4}, max rel error {maxRel:g4}, {failing} of {x.NumberOfElements} elements fail");
        }
    }

    /// <summary>Marks tensors as used when a check consumed them indirectly (e.g. config facts restated as tensors).</summary>
    public void MarkUsed(string name)
    {
        if (!Has(name)) throw new XunitException($"{Case.Name}: reference.json has no tensor '{name}'");
        _touched.Add(name);
    }

    public void Dispose() => _reference.Dispose();
}
