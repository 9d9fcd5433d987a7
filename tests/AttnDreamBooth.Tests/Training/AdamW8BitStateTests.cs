using System.Text.Json;
using AttnDreamBooth.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Training;

/// <summary>8-bit block-wise optimizer states: the quantization map and codes, the memory layout, checkpoints.</summary>
public sealed class AdamW8BitStateTests
{
    [Fact]
    public void DynamicMapsFollowTheirConstruction()
    {
        var signed = DynamicQuantizationMap.Signed;
        var unsigned = DynamicQuantizationMap.Unsigned;
        Assert.Equal(256, signed.Count);
        Assert.Equal(256, unsigned.Count);
        for (int i = 1; i < 256; i++)
        {
            Assert.True(signed[i] > signed[i - 1], $"signed map not increasing at {i}");
            Assert.True(unsigned[i] > unsigned[i - 1], $"unsigned map not increasing at {i}");
        }
        // Decade 0 of the signed map is one interval [0.1, 1]·1e-6 → midpoint 0.55e-6; of the unsigned one two → 0.325e-6.
        Assert.Equal(5.5e-7f, signed.Where(x => x > 0).Min());
        Assert.Equal(3.25e-7f, unsigned.Where(x => x > 0).Min());
        // The largest midpoint of the top decade: 64 (signed) or 128 (unsigned) intervals of [0.1, 1].
        Assert.Equal((float)(1 - 0.9 / 128), signed.Where(x => x < 1).Max());
        Assert.Equal((float)-(1 - 0.9 / 128), signed[0]);
        Assert.Equal((float)(1 - 0.9 / 256), unsigned.Where(x => x < 1).Max());
        Assert.Contains(0f, signed);
        Assert.Equal(0f, unsigned[0]);
        Assert.Equal(1f, signed[255]);
        Assert.Equal(1f, unsigned[255]);
        // Codes per decade grow as 2^e: 64 of the 127 positive signed values lie in [0.1, 1).
        Assert.Equal(64, signed.Count(x => x >= 0.1f && x < 1f));
        Assert.Equal(128, unsigned.Count(x => x >= 0.1f && x < 1f));
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(255, false)]
    [InlineData(256 * 3, true)]
    [InlineData(4097, false)]
    [InlineData(5000, true)]
    public void CodesAreTheNearestMapValueOfEachElementOverItsBlockMaximum(int n, bool signed)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)n);
        // Values over eight decades; the second moment is never negative.
        var values = randn([n], generator: generator).mul(rand([n], generator: generator).mul(Kept(8)).sub(Kept(8)).mul(Kept(Math.Log(10))).exp());
        if (!signed) values = values.abs();
        if (n > 300) values[TensorIndex.Slice(256, 512)] = zeros(256); // an all-zero block
        using var maps = new QuantizationMaps();
        using var q = BlockwiseQuantizedTensor.Zeros(n, signed, CPU);
        q.Quantize(values, maps);

        var map = DynamicQuantizationMap.For(signed);
        var x = values.data<float>().ToArray();
        var codes = q.Codes.data<byte>().ToArray();
        var absmax = q.Absmax.data<float>().ToArray();
        var restored = q.Dequantize(maps).data<float>().ToArray();
        Assert.Equal((n + 255) / 256, absmax.Length);
        for (int b = 0; b < absmax.Length; b++)
        {
            float expected = 0;
            for (int i = b * 256; i < Math.Min(n, (b + 1) * 256); i++) expected = Math.Max(expected, Math.Abs(x[i]));
            Assert.Equal(expected, absmax[b]);
        }
        for (int i = 0; i < n; i++)
        {
            float scale = absmax[i / 256];
            float normalized = scale == 0 ? 0 : x[i] / scale;
            double best = map.Min(m => Math.Abs((double)m - normalized));
            Assert.True(Math.Abs((double)map[codes[i]] - normalized) == best, $"element {i}: code {codes[i]} ({map[codes[i]]}) is not nearest to {normalized}");
            Assert.Equal(map[codes[i]] * scale, restored[i]);
        }
        if (n > 300) Assert.All(restored.Skip(256).Take(256), r => Assert.Equal(0f, r));
    }

    [Fact]
    public void FirstStepEqualsFloat32AndLaterStepsStoreTheQuantizedMoments()
    {
        var generator = new Generator(21);
        var init = randn([10_000], generator: generator);
        var grads = Enumerable.Range(0, 3).Select(_ => randn([10_000], generator: generator)).ToArray();
        var p32 = new Parameter(init.clone());
        var p8 = new Parameter(init.clone());
        using var fp32 = new AdamWOptimizer([("p", p32)], AdamWOptions.Default, 1e-3);
        using var int8 = new AdamWOptimizer([("p", p8)], AdamWOptions.Default, 1e-3, AdamWStateFormat.BlockwiseInt8);
        p32.grad = grads[0].clone();
        p8.grad = grads[0].clone();
        fp32.Step();
        int8.Step();
        // The update reads the dequantized previous moments (zero before step 1) and uses the fresh float32 moments.
        Assert.True(TinyPipeline.BitEqual(p32.detach(), p8.detach()));

        // What is stored is the float32 moment quantized: re-quantizing the float32 optimizer's moments gives the codes.
        var stored = int8.StateTensors();
        var expected = fp32.StateTensors();
        using var maps = new QuantizationMaps();
        foreach (var (key, signed) in new[] { ("p.exp_avg", true), ("p.exp_avg_sq", false) })
        {
            using var q = BlockwiseQuantizedTensor.Zeros(10_000, signed, CPU);
            q.Quantize(expected[key], maps);
            Assert.True(TinyPipeline.BitEqual(q.Codes, stored[key + ".codes"]), key);
            Assert.True(TinyPipeline.BitEqual(q.Absmax, stored[key + ".absmax"]), key);
        }
        for (int step = 1; step < 3; step++)
        {
            p32.grad = grads[step].clone();
            p8.grad = grads[step].clone();
            fp32.Step();
            int8.Step();
        }
        var delta32 = p32.detach() - init;
        var delta8 = p8.detach() - init;
        double relative = (delta8 - delta32).norm().item<float>() / delta32.norm().item<float>();
        Assert.True(relative > 0 && relative < 0.1, $"three steps: relative difference of the updates {relative}");
    }

    [Fact]
    public void StateBytesFollowTheLayoutOnASmallModelAndGiveUnder18GBForTheSd21UNet()
    {
        using var unet = TinyUNet.Load(TestPaths.TinySd1);
        var named = unet.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        var generator = new Generator(4);
        using var optimizer = new AdamWOptimizer(named, AdamWOptions.Default, 1e-4, AdamWStateFormat.BlockwiseInt8);
        foreach (var (_, p) in named) p.grad = randn(p.shape, generator: generator);
        optimizer.Step();

        long stored = optimizer.StateTensors().Values.Sum(t => t.NumberOfElements * t.ElementSize);
        var sizes = named.Select(p => p.parameter.NumberOfElements).ToArray();
        Assert.Equal(stored, optimizer.StateBytes);
        Assert.Equal(stored, AdamWOptimizer.StateBytesFor(sizes, AdamWStateFormat.BlockwiseInt8));
        long quantizedElements = sizes.Where(n => n >= 4096).Sum();
        long quantizedBytes = stored - 8 * sizes.Where(n => n < 4096).Sum();
        Assert.True(quantizedElements > 0.9 * sizes.Sum());
        // Two moments × (1 byte + a 4-byte scale per 256 elements); ragged last blocks only add whole scales.
        Assert.Equal(2 * sizes.Where(n => n >= 4096).Sum(n => n + 4 * ((n + 255) / 256)), quantizedBytes);
        Assert.InRange(quantizedBytes / (double)quantizedElements, 2.0, 2.0 + 8.0 / 256 + 1e-3);

        // The SD 2.1 U-Net's real parameter shapes (865,910,724 parameters): float32 moments 6.93 GB, 8-bit 1.76 GB.
        foreach (string model in new[] { "stable-diffusion-2-1-base", "stable-diffusion-2-1" })
        {
            string file = Path.Combine(TestPaths.FixturesRoot, "real-size", model, "unet", "state_dict_shapes.json");
            var shapes = JsonSerializer.Deserialize<Dictionary<string, long[]>>(File.ReadAllText(file))!;
            var counts = shapes.Values.Select(s => s.Aggregate(1L, (a, b) => a * b)).ToArray();
            Assert.Equal(865_910_724, counts.Sum());
            Assert.Equal(8 * 865_910_724L, AdamWOptimizer.StateBytesFor(counts, AdamWStateFormat.Float32));
            long int8 = AdamWOptimizer.StateBytesFor(counts, AdamWStateFormat.BlockwiseInt8);
            Assert.Equal(1_761_010_832, int8);
            Assert.True(int8 <= 1_800_000_000);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ACheckpointedOptimizerResumesBitIdentically(bool eightBit)
    {
        var format = eightBit ? AdamWStateFormat.BlockwiseInt8 : AdamWStateFormat.Float32;
        using var dir = TestPaths.CreateTempDirectory();
        var generator = new Generator(77);
        int[] sizes = [100, 4096, 9_999, 70_000];
        var init = sizes.Select(n => randn([n], generator: generator)).ToArray();
        var grads = Enumerable.Range(0, 6).Select(_ => sizes.Select(n => AdamWOnePassTests.Gradient([n], 1, generator)).ToArray()).ToArray();

        List<(string, Parameter)> Fresh() => init.Select((t, i) => ($"p{i}", new Parameter(t.clone()))).ToList();
        void Step(AdamWOptimizer o, int step)
        {
            for (int i = 0; i < sizes.Length; i++) o.Parameters[i].Parameter.grad = grads[step][i].clone();
            o.Step();
        }

        var straight = Fresh();
        using var a = new AdamWOptimizer(straight, AdamWOptions.Default, 1e-3, format);
        for (int step = 0; step < 6; step++) Step(a, step);

        var first = Fresh();
        string checkpoint;
        using (var b = new AdamWOptimizer(first, AdamWOptions.Default, 1e-3, format))
        {
            for (int step = 0; step < 3; step++) Step(b, step);
            var tensors = b.StateTensors().ToDictionary(p => "optim." + p.Key, p => p.Value);
            for (int i = 0; i < sizes.Length; i++) tensors[$"param.{i}"] = first[i].Item2.detach().clone();
            checkpoint = TrainingCheckpoint.Write(dir.Path, new TrainingCheckpointState { Stage = 3, StepInStage = 3, GlobalStep = 3 }, tensors);
            Assert.Equal(format == AdamWStateFormat.BlockwiseInt8, tensors.Keys.Any(k => k.EndsWith(".codes", StringComparison.Ordinal)));
        }

        var (state, restored) = TrainingCheckpoint.Read(checkpoint);
        var resumed = init.Select((_, i) => ($"p{i}", new Parameter(restored[$"param.{i}"].clone()))).ToList();
        using var c = new AdamWOptimizer(resumed, AdamWOptions.Default, 1e-3, format);
        c.LoadState(restored.Where(p => p.Key.StartsWith("optim.", StringComparison.Ordinal)).ToDictionary(p => p.Key["optim.".Length..], p => p.Value), state.StepInStage);
        for (int step = 3; step < 6; step++) Step(c, step);

        var expectedState = a.StateTensors();
        var actualState = c.StateTensors();
        Assert.Equal(expectedState.Keys.Order(), actualState.Keys.Order());
        foreach (var (key, value) in expectedState) Assert.True(TinyPipeline.BitEqual(value, actualState[key]), key);
        for (int i = 0; i < sizes.Length; i++) Assert.True(TinyPipeline.BitEqual(straight[i].Item2, resumed[i].Item2), $"p{i}");
        Assert.Equal(a.StepCount, c.StepCount);
    }

    [Fact]
    public void StateOfTheOtherFormatOrMalformedStateIsRejectedClearly()
    {
        var p = new Parameter(randn(5000));
        p.grad = randn(5000);
        using var int8 = new AdamWOptimizer([("w", p)], AdamWOptions.Default, 1e-3, AdamWStateFormat.BlockwiseInt8);
        int8.Step();
        var quantized = int8.StateTensors();
        using var fp32 = new AdamWOptimizer([("w", p)], AdamWOptions.Default, 1e-3);
        fp32.Step();
        var full = fp32.StateTensors();

        var e = Assert.Throws<ArgumentException>(() => fp32.LoadState(quantized, 1));
        Assert.Contains("'w' holds 8-bit moments", e.Message);
        e = Assert.Throws<ArgumentException>(() => int8.LoadState(full, 1));
        Assert.Contains("'w' holds float32 moments", e.Message);

        void Rejects(string key, Tensor value, string expected)
        {
            var bad = new Dictionary<string, Tensor>(quantized) { [key] = value };
            var error = Assert.Throws<ArgumentException>(() => int8.LoadState(bad, 1));
            Assert.Contains(expected, error.Message);
        }
        Rejects("w.exp_avg.codes", zeros(5000, dtype: int32), "must be uint8 [5000]");
        Rejects("w.exp_avg.codes", zeros(4999, dtype: ScalarType.Byte), "must be uint8 [5000]");
        Rejects("w.exp_avg_sq.absmax", zeros(19), "must be float32 [20]");
        Rejects("w.exp_avg_sq.absmax", full_like(quantized["w.exp_avg_sq.absmax"], Kept(-1f)), "negative or non-finite");
        Rejects("w.exp_avg.absmax", full_like(quantized["w.exp_avg.absmax"], Kept(float.NaN)), "negative or non-finite");
        Rejects("w.momentum", zeros(3), "Unrecognised optimizer state tensor 'w.momentum'");
        Rejects("other.exp_avg.codes", zeros(3, dtype: ScalarType.Byte), "'other', which this optimizer does not train");
        var missing = new Dictionary<string, Tensor>(quantized);
        missing.Remove("w.exp_avg_sq.absmax");
        Assert.Contains("lacks exp_avg_sq.codes or exp_avg_sq.absmax", Assert.Throws<ArgumentException>(() => int8.LoadState(missing, 1)).Message);
        // A failed load leaves the previous state in place.
        Assert.True(TinyPipeline.BitEqual(quantized["w.exp_avg.codes"], int8.StateTensors()["w.exp_avg.codes"]));
    }
}
