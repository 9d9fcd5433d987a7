using AttnDreamBooth.Tests.Personalization;
using AttnDreamBooth.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Training;

/// <summary>
/// The fused 8-bit AdamW kernel against the tensor-operation path it replaces (<see cref="BlockwiseQuantizedTensor"/>
/// around the one-pass update), which stays the reference: codes, scales, parameters and moments must be bit-identical.
/// </summary>
public sealed class AdamW8BitKernelTests
{
    /// <summary>Every boundary, its float neighbours, every map value, every table cell's first and last float, signed
    /// zeros, denormals, extremes, infinities and log-spread random values.</summary>
    private static float[] ProbeValues(bool signed)
    {
        var lookup = NearestCodeLookup.For(signed);
        var values = new List<float> { 0f, -0f, float.Epsilon, -float.Epsilon, 1e-40f, -1e-40f, 1.17549435e-38f, -1.17549435e-38f,
            1f, -1f, float.MaxValue, -float.MaxValue, float.PositiveInfinity, float.NegativeInfinity, 1.5f, -1.5f };
        foreach (float b in lookup.Boundaries[..255])
        {
            values.AddRange([b, MathF.BitDecrement(b), MathF.BitIncrement(b), -b, MathF.BitDecrement(-b), MathF.BitIncrement(-b)]);
        }
        foreach (float m in lookup.Values) values.AddRange([m, -m]);
        for (int cell = 0; cell < NearestCodeLookup.CellsPerSign; cell++)
        {
            int low = cell << NearestCodeLookup.Shift, high = low + (1 << NearestCodeLookup.Shift) - 1;
            foreach (int bits in new[] { low, high })
            {
                float x = BitConverter.Int32BitsToSingle(bits);
                if (float.IsFinite(x)) values.AddRange([x, -x]);
            }
        }
        var random = new Random(5);
        for (int i = 0; i < 100_000; i++) values.Add((float)((random.Next(2) * 2 - 1) * Math.Pow(10, -9 * random.NextDouble())));
        return [.. values];
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LookupGivesBucketizesCodeForBoundariesNeighboursCellEdgesAndSpecialValues(bool signed)
    {
        using var scope = NewDisposeScope();
        var lookup = NearestCodeLookup.For(signed);
        // The dynamic maps' boundaries are never closer than a cell is wide: one comparison after the look-up.
        Assert.Equal(1, lookup.Corrections);
        var x = ProbeValues(signed).Append(float.NaN).Append(-float.NaN).ToArray();
        using var maps = new QuantizationMaps();
        var expected = tensor(x).bucketize(maps.Boundaries(signed, CPU), outInt32: true).data<int>().ToArray();
        int mismatches = 0;
        for (int i = 0; i < x.Length; i++)
        {
            if (lookup.Code(x[i]) != expected[i]) mismatches++;
            Assert.Equal(expected[i], NearestCodeLookup.Reference(lookup.Boundaries[..255], x[i]));
        }
        Assert.Equal(0, mismatches);
        Assert.Equal(255, lookup.Code(float.NaN));
        Assert.Equal(255, lookup.Code(-float.NaN));
    }

    /// <summary>Blocks that each start with 1 (so the block scale is exactly 1 and the kernel codes the probe values
    /// themselves, through the vector body and the scalar tail), then blocks of edge cases, then a ragged last block.</summary>
    private static Tensor EdgeBlocks(bool signed)
    {
        var probes = ProbeValues(signed);
        var values = new List<float>();
        for (int i = 0; i < probes.Length; i += 255)
        {
            values.Add(1f);
            values.AddRange(probes.Skip(i).Take(255));
            while (values.Count % 256 != 0) values.Add(0.5f);
        }
        var random = new Random(11);
        float Normal() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        void Block(Func<int, float> value)
        {
            for (int i = 0; i < 256; i++) values.Add(value(i));
        }
        Block(_ => 0f);                                          // all zero: scale 0, divided by 1
        Block(i => i % 2 == 0 ? 0f : -0f);                       // signed zeros
        Block(_ => 0.3f);                                        // all equal
        Block(_ => -7.25e-3f);                                   // all equal, negative
        Block(i => i % 3 == 0 ? float.MaxValue : -float.MaxValue * Normal() / 4); // extremes
        Block(i => 1e-39f * (i - 128));                          // denormals only (scale denormal)
        Block(i => i == 17 ? 1e-3f : 1e-42f * i);                // denormals next to a normal maximum
        Block(i => i == 200 ? -5f : 0f);                         // a single non-zero
        Block(i => i == 3 ? float.PositiveInfinity : Normal()); // an infinite maximum: finite/∞ = 0, ∞/∞ = NaN
        Block(i => i == 9 ? float.NaN : Normal());               // a NaN: scale NaN, every code 255
        Block(i => Normal() * (float)Math.Pow(10, -8 * random.NextDouble()));
        for (int i = 0; i < 77; i++) values.Add(Normal() * 1e-4f);  // ragged last block (vector body + scalar tail)
        var result = tensor(values.ToArray());
        return signed ? result : result.abs();
    }

    private static unsafe (Tensor Codes, Tensor Absmax) KernelQuantize(Tensor values, bool signed)
    {
        long n = values.NumberOfElements;
        var codes = zeros(n, dtype: ScalarType.Byte);
        var absmax = zeros(BlockwiseQuantizedTensor.BlockCount(n));
        float* x = (float*)AdamWOnePassUpdate.DataPointer(values);
        byte* c = (byte*)AdamWOnePassUpdate.DataPointer(codes);
        float* a = (float*)AdamWOnePassUpdate.DataPointer(absmax);
        for (long start = 0, b = 0; start < n; start += 256, b++)
            a[b] = AdamW8BitCpuKernel.Quantize(x + start, (int)Math.Min(256, n - start), NearestCodeLookup.For(signed), c + start);
        return (codes, absmax);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public unsafe void KernelQuantizationAndDequantizationEqualTheTensorOpsBitForBit(bool signed)
    {
        using var scope = NewDisposeScope();
        var values = EdgeBlocks(signed);
        using var maps = new QuantizationMaps();
        using var reference = BlockwiseQuantizedTensor.Zeros(values.NumberOfElements, signed, CPU);
        reference.Quantize(values, maps);
        var (codes, absmax) = KernelQuantize(values, signed);

        Assert.True(TinyPipeline.BitEqual(reference.Codes, codes), "codes");
        var a = absmax.data<float>().ToArray();
        var r = reference.Absmax.data<float>().ToArray();
        Assert.Equal(r.Length, a.Length);
        for (int b = 0; b < a.Length; b++)
        {
            // NaN payloads may differ; everything else must match bit for bit.
            Assert.True(float.IsNaN(r[b]) ? float.IsNaN(a[b]) : BitConverter.SingleToInt32Bits(r[b]) == BitConverter.SingleToInt32Bits(a[b]), $"block {b}: {r[b]} vs {a[b]}");
        }
        Assert.Contains((byte)255, codes.data<byte>().ToArray()); // the NaN block

        // Dequantization of the same codes and scales (a finite copy of the scales: NaN × anything is NaN either way).
        var finite = reference.Absmax.nan_to_num(0);
        using var stored = BlockwiseQuantizedTensor.FromStored(reference.Codes, finite, signed, CPU);
        var expected = stored.Dequantize(maps);
        long n = values.NumberOfElements;
        var actual = empty(n);
        float* o = (float*)AdamWOnePassUpdate.DataPointer(actual);
        byte* c = (byte*)AdamWOnePassUpdate.DataPointer(stored.Codes);
        float* s = (float*)AdamWOnePassUpdate.DataPointer(stored.Absmax);
        for (long start = 0, b = 0; start < n; start += 256, b++)
            AdamW8BitCpuKernel.Dequantize(c + start, s[b], (int)Math.Min(256, n - start), NearestCodeLookup.For(signed), o + start);
        Assert.True(TinyPipeline.BitEqual(expected, actual), "dequantized values");
    }

    [Fact]
    public void FusedStepIsBitIdenticalToTheTensorOpPathOverManySteps()
    {
        // Ragged sizes, several parallel chunks, a half-precision parameter (float32 master copy), a transposed one
        // (not contiguous: stays on the tensor-op path in both runs) and tiny ones.
        long[][] shapes = [[1], [255], [4096], [37, 139], [2 * 65_536 + 300], [3, 256 * 3 + 1], [64, 96]];
        var generator = new Generator(2024);
        var init = shapes.Select(s => randn(s, generator: generator)).ToArray();
        var grads = Enumerable.Range(1, 12).Select(step => shapes.Select(s => AdamWOnePassTests.Gradient(s, step, generator)).ToArray()).ToArray();

        (List<(string, Parameter)> Parameters, AdamWOptimizer Optimizer) Run(bool fused)
        {
            var parameters = init.Select((t, i) =>
            {
                var value = i == 2 ? t.to_type(ScalarType.BFloat16) : i == 6 ? t.t().contiguous().t() : t.clone();
                return ($"p{i}", new Parameter(value));
            }).ToList();
            var optimizer = new AdamWOptimizer(parameters, new AdamWOptions { WeightDecay = 1e-2 }, 1e-3, AdamWStateFormat.BlockwiseInt8)
            {
                MinQuantizedElements = 1,
                FuseQuantizedUpdate = fused,
            };
            foreach (var step in grads)
            {
                for (int i = 0; i < shapes.Length; i++)
                {
                    var g = step[i].clone();
                    parameters[i].Item2.grad = i == 2 ? g.to_type(ScalarType.BFloat16) : i == 6 ? g.t().contiguous().t() : g;
                }
                optimizer.Step();
            }
            return (parameters, optimizer);
        }

        var (fusedParameters, fusedOptimizer) = Run(fused: true);
        var (referenceParameters, referenceOptimizer) = Run(fused: false);
        using (fusedOptimizer)
        using (referenceOptimizer)
        {
            Assert.False(TinyPipeline.BitEqual(init[4], fusedParameters[4].Item2.detach()));
            var fusedState = fusedOptimizer.StateTensors();
            var referenceState = referenceOptimizer.StateTensors();
            Assert.Equal(referenceState.Keys.Order(), fusedState.Keys.Order());
            foreach (var (key, value) in referenceState) Assert.True(TinyPipeline.BitEqual(value, fusedState[key]), key);
            for (int i = 0; i < shapes.Length; i++) Assert.True(TinyPipeline.BitEqual(referenceParameters[i].Item2, fusedParameters[i].Item2), $"p{i}");
            // The comparison is not vacuous: the contiguous float32 parameters did take the kernel.
            var s = fusedState;
            using var q = BlockwiseQuantizedTensor.FromStored(s["p4.exp_avg.codes"], s["p4.exp_avg.absmax"], true, CPU);
            using var qs = BlockwiseQuantizedTensor.FromStored(s["p4.exp_avg_sq.codes"], s["p4.exp_avg_sq.absmax"], false, CPU);
            Assert.True(AdamW8BitOnePassUpdate.Supports(new AdamW8BitTensors(fusedParameters[4].Item2, grads[0][4], q, qs)));
            Assert.False(AdamW8BitOnePassUpdate.Supports(new AdamW8BitTensors(fusedParameters[6].Item2, grads[0][6].t().contiguous().t(), q, qs)));
        }
    }

    /// <summary>
    /// What 8 bits cost per step: the stored moment, dequantized, against the float32 moment the same step computed from
    /// the same (dequantized) previous state. Rounding to the nearest map value errs by at most half the widest gap
    /// between neighbouring map values times the block scale: 0.9/128 of it for the signed map (64 intervals in the
    /// top decade), 0.9/256 for the unsigned one.
    /// </summary>
    [Fact]
    public void EachStepsQuantizationErrorIsWithinHalfTheWidestMapGapOfTheBlockScale()
    {
        var generator = new Generator(8);
        const int n = 10_000;
        var p = new Parameter(randn([n], generator: generator));
        using var int8 = new AdamWOptimizer([("p", p)], AdamWOptions.Default, 1e-3, AdamWStateFormat.BlockwiseInt8);
        using var maps = new QuantizationMaps();
        var worst = new Dictionary<bool, double> { [true] = 0, [false] = 0 };
        for (int step = 1; step <= 12; step++)
        {
            using var scope = NewDisposeScope();
            var grad = AdamWOnePassTests.Gradient([n], step, generator);
            var before = int8.StateTensors();
            var shadow = new Parameter(p.detach().clone());
            using var fp32 = new AdamWOptimizer([("p", shadow)], AdamWOptions.Default, 1e-3);
            if (step > 1)
            {
                var dequantized = new Dictionary<string, Tensor>();
                foreach (var (key, signed) in new[] { ("p.exp_avg", true), ("p.exp_avg_sq", false) })
                {
                    using var q = BlockwiseQuantizedTensor.FromStored(before[key + ".codes"], before[key + ".absmax"], signed, CPU);
                    dequantized[key] = q.Dequantize(maps);
                }
                fp32.LoadState(dequantized, step - 1);
            }
            p.grad = grad.clone();
            shadow.grad = grad.clone();
            int8.Step();
            fp32.Step();
            Assert.True(TinyPipeline.BitEqual(shadow.detach(), p.detach()), $"step {step}: the update itself is the float32 one");

            var after = int8.StateTensors();
            var exact = fp32.StateTensors();
            foreach (var (key, signed) in new[] { ("p.exp_avg", true), ("p.exp_avg_sq", false) })
            {
                using var q = BlockwiseQuantizedTensor.FromStored(after[key + ".codes"], after[key + ".absmax"], signed, CPU);
                var error = q.Dequantize(maps).sub(exact[key]).abs().view(-1);
                var scale = after[key + ".absmax"].repeat_interleave(256).narrow(0, 0, n);
                var relative = error.div(scale.clamp_min(Kept(1e-30f))).max().item<float>();
                worst[signed] = Math.Max(worst[signed], relative);
            }
        }
        Assert.InRange(worst[true], 1e-4, 0.9 / 128 * 1.0001);
        Assert.InRange(worst[false], 1e-4, 0.9 / 256 * 1.0001);
    }
}
