using System.Text;
using AttnDreamBooth.IO;
using Xunit.Abstractions;

namespace AttnDreamBooth.Tests.IO;

/// <summary>
/// Crafted malformed safetensors files (generated here, never committed): each must be rejected with a
/// <see cref="InvalidWeightsException"/> naming the file (and the tensor where one is at fault), without
/// allocating more than the file's own size plus a small constant.
/// </summary>
public sealed class SafetensorsAdversarialTests(ITestOutputHelper output)
{
    /// <summary>Exception objects, stack traces and messages; far below any tensor-sized allocation.</summary>
    private const long AllocationSlack = 64 * 1024;

    private sealed record BadFile(Func<byte[]> Bytes, string? Tensor, string Problem);

    private static readonly Dictionary<string, BadFile> Cases = BuildCases();

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (string name in Cases.Keys) data.Add(name);
        return data;
    }

    [Fact]
    public void SuiteHasAtLeastThirtyCases() => Assert.True(Cases.Count >= 30, $"only {Cases.Count} cases");

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void BadFileIsRejectedWithATypedExceptionAndBoundedAllocation(string caseName)
    {
        var bad = Cases[caseName];
        using var dir = TestPaths.CreateTempDirectory();
        byte[] bytes = bad.Bytes();
        string path = dir.File(caseName + ".safetensors");
        File.WriteAllBytes(path, bytes);
        WarmUp(dir);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Record.Exception(() => SafetensorsFile.Open(path).Dispose());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        output.WriteLine($"{bytes.Length} bytes, {allocated} allocated: {ex?.GetType().Name}: {ex?.Message}");
        var format = Assert.IsType<InvalidWeightsException>(ex);
        Assert.Equal(Path.GetFullPath(path), format.FilePath);
        Assert.Contains(Path.GetFullPath(path), format.Message);
        Assert.Equal(bad.Tensor, format.TensorName);
        if (bad.Tensor is not null) Assert.Contains($"'{bad.Tensor}'", format.Message);
        Assert.Contains(bad.Problem, format.Problem, StringComparison.OrdinalIgnoreCase);
        Assert.True(allocated < bytes.Length + AllocationSlack,
            $"opening a {bytes.Length}-byte file allocated {allocated} bytes ({format.Problem})");
    }

    [Fact]
    public void MissingFileIsFileNotFound()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("absent.safetensors");
        var ex = Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(path));
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void HeaderLengthOf2To63AllocatesNothingSizable()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string path = dir.File("huge.safetensors");
        File.WriteAllBytes(path, WithLength(1UL << 63, "{}"u8.ToArray()));
        WarmUp(dir);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<InvalidWeightsException>(() => SafetensorsFile.Open(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("9223372036854775808", ex.Problem);
        Assert.True(allocated < AllocationSlack, $"allocated {allocated} bytes");
    }

    [Fact]
    public void WellFormedEdgeCasesAreAccepted()
    {
        using var dir = TestPaths.CreateTempDirectory();
        // Space padding, an escaped name, an unknown field, an empty tensor sharing an offset, a 0-dim tensor.
        string header = """
            {"__metadata__":{"format":"pt"},
             "a\u002eb":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"note":{"x":[1]}},
             "empty":{"data_offsets":[8,8],"shape":[0,3],"dtype":"I64"},
             "s":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}
            """ + "      ";
        string path = dir.File("ok.safetensors");
        File.WriteAllBytes(path, Build(header, 9));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["a.b", "empty", "s"], file.Names);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(new long[] { 0, 3 }, file.Entries["empty"].Shape);
        using var empty = file.ReadTensor("empty");
        Assert.Equal(0, empty.NumberOfElements);
        using var scalar = file.ReadTensor("s");
        Assert.Equal(0, scalar.dim());
    }

    [Fact]
    public void EscapedNamesAreMeasuredAfterUnescaping()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string name = string.Concat(Enumerable.Repeat("\\u00e9", 1000));
        string path = dir.File("escaped.safetensors");
        File.WriteAllBytes(path, Build(Entry(name, "U8", "[1]", "[0,1]"), 1));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(new string('é', 1000), Assert.Single(file.Names));
    }

    [Fact]
    public void WriterRefusesNamesTheReaderWouldRefuse()
    {
        using var dir = TestPaths.CreateTempDirectory();
        var tensors = new Dictionary<string, TorchSharp.torch.Tensor> { [new string('é', 2049)] = TorchSharp.torch.ones(1) };
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(dir.File("long.safetensors"), tensors));
        var ok = new Dictionary<string, TorchSharp.torch.Tensor> { [new string('é', 2048)] = TorchSharp.torch.ones(1) };
        SafetensorsWriter.Write(dir.File("ok.safetensors"), ok);
        using var file = SafetensorsFile.Open(dir.File("ok.safetensors"));
        Assert.Equal(ok.Keys, file.Names);
    }

    [Fact]
    public void MaxDepthStopsDeepNestingInUnknownFieldsButAllowsTheFormatsOwnDepth()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string shallow = dir.File("shallow.safetensors");
        File.WriteAllBytes(shallow, Build("""{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":[1]}}""", 1));
        using (SafetensorsFile.Open(shallow)) { }

        string deep = dir.File("deep.safetensors");
        File.WriteAllBytes(deep, Build("""{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":[[[1]]]}}""", 1));
        var ex = Assert.Throws<InvalidWeightsException>(() => SafetensorsFile.Open(deep));
        Assert.Contains("depth", ex.Problem);
    }

    [Fact]
    public void RandomCorruptionsEitherOpenOrGiveTheTypedException()
    {
        using var dir = TestPaths.CreateTempDirectory();
        string source = dir.File("source.safetensors");
        var generator = new TorchSharp.torch.Generator(7);
        SafetensorsWriter.Write(source, new Dictionary<string, TorchSharp.torch.Tensor>
        {
            ["down.0.weight"] = TorchSharp.torch.randn([3, 2], generator: generator),
            ["down.0.bias"] = TorchSharp.torch.randn([3], generator: generator).to_type(TorchSharp.torch.float16),
            ["step"] = TorchSharp.torch.tensor(5L),
        }, new Dictionary<string, string> { ["format"] = "pt" });
        byte[] original = File.ReadAllBytes(source);
        int headerEnd = 8 + (int)BitConverter.ToUInt64(original, 0);
        var random = new Random(20240607);
        string path = dir.File("mutant.safetensors");
        int opened = 0, rejected = 0;
        for (int trial = 0; trial < 1500; trial++)
        {
            byte[] bytes = (byte[])original.Clone();
            switch (trial % 3)
            {
                case 0: // flip one byte of the length prefix or header
                    bytes[random.Next(headerEnd)] = (byte)random.Next(256);
                    break;
                case 1: // replace a header byte with a JSON-significant character
                    bytes[8 + random.Next(headerEnd - 8)] = Significant[random.Next(Significant.Length)];
                    break;
                default: // truncate
                    Array.Resize(ref bytes, random.Next(bytes.Length));
                    break;
            }
            File.WriteAllBytes(path, bytes);
            try
            {
                using var file = SafetensorsFile.Open(path);
                foreach (var tensor in file.ReadAll().Values) tensor.Dispose();
                opened++;
            }
            catch (InvalidWeightsException ex)
            {
                Assert.Equal(Path.GetFullPath(path), ex.FilePath);
                rejected++;
            }
        }
        Assert.True(rejected > 1000, $"only {rejected} of 1500 mutants were rejected");
        Assert.True(opened > 0, "no harmless mutation (e.g. in padding or metadata text) was accepted");
    }

    private static readonly byte[] Significant = "{}[]\",:-0123456789 eE."u8.ToArray();

    private static void WarmUp(TempDirectory dir)
    {
        // First calls initialize statics and JIT; they are not what the bound is about.
        string good = dir.File("warm-good.safetensors");
        File.WriteAllBytes(good, Build(Entry("t", "F32", "[1]", "[0,4]"), 4));
        SafetensorsFile.Open(good).Dispose();
        string bad = dir.File("warm-bad.safetensors");
        File.WriteAllBytes(bad, Build("""{"t":{"dtype":"X"}}"""));
        Assert.Throws<InvalidWeightsException>(() => SafetensorsFile.Open(bad));
    }

    private static string Entry(string name, string dtype, string shape, string offsets) =>
        "{\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}";

    private static string Fields(string name, string fields) => "{\"" + name + "\":{" + fields + "}}";

    private static byte[] Build(string header, int dataBytes = 0) => Build(Encoding.UTF8.GetBytes(header), dataBytes);

    private static byte[] Build(byte[] header, int dataBytes = 0)
    {
        var bytes = WithLength((ulong)header.Length, header);
        Array.Resize(ref bytes, bytes.Length + dataBytes);
        return bytes;
    }

    private static byte[] WithLength(ulong declared, byte[] rest)
    {
        var bytes = new byte[8 + rest.Length];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), declared);
        rest.CopyTo(bytes, 8);
        return bytes;
    }

    private static Dictionary<string, BadFile> BuildCases()
    {
        const string t = "w";
        string okFields = "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
        var c = new Dictionary<string, BadFile>(StringComparer.Ordinal)
        {
            // Framing.
            ["empty-file"] = new(() => [], null, "fewer than the 8-byte"),
            ["seven-bytes"] = new(() => new byte[7], null, "fewer than the 8-byte"),
            ["length-beyond-file"] = new(() => WithLength(1000, "{}"u8.ToArray()), null, "runs past the end"),
            ["length-above-cap"] = new(() => WithLength(200UL * 1024 * 1024, "{}"u8.ToArray()), null, "exceeds the"),
            ["length-2^63"] = new(() => WithLength(1UL << 63, "{}"u8.ToArray()), null, "exceeds the"),
            ["length-max-ulong"] = new(() => WithLength(ulong.MaxValue, "{}"u8.ToArray()), null, "exceeds the"),
            ["zero-length-header"] = new(() => WithLength(0, "{}"u8.ToArray()), null, "too short"),
            ["one-byte-header"] = new(() => WithLength(1, "{}"u8.ToArray()), null, "too short"),
            // JSON syntax.
            ["non-utf8-name"] = new(() => Build([.. "{\""u8, 0xFF, 0xFE, .. "\":{}}"u8]), null, "UTF-8"),
            ["non-utf8-metadata"] = new(() => Build([.. "{\"__metadata__\":{\"k\":\""u8, 0xC3, 0x28, .. "\"}}"u8]), null, "UTF-8"),
            ["truncated-json"] = new(() => Build("{\"w\":"), t, "not valid JSON"),
            ["garbage-json"] = new(() => Build("not json at all"), null, "not valid JSON"),
            ["byte-order-mark"] = new(() => Build([0xEF, 0xBB, 0xBF, .. "{}"u8]), null, "not valid JSON"),
            ["comment"] = new(() => Build("{/* hi */}"), null, "not valid JSON"),
            ["trailing-comma"] = new(() => Build(Fields(t, okFields + ",")), t, "not valid JSON"),
            ["content-after-object"] = new(() => Build("{} {}"), null, "not valid JSON"),
            ["nan-dimension"] = new(() => Build(Fields(t, "\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,4]")), t, "not valid JSON"),
            ["array-root"] = new(() => Build("[1,2]"), null, "not an object"),
            ["number-root"] = new(() => Build("42"), null, "not an object"),
            ["string-root"] = new(() => Build("\"w\""), null, "not an object"),
            ["deeply-nested-arrays"] = new(() => Build(Fields(t, okFields + ",\"x\":" + new string('[', 100_000) + new string(']', 100_000)), 8), t, "depth"),
            ["deeply-nested-objects"] = new(() => Build(string.Concat(Enumerable.Repeat("{\"a\":", 50_000)) + "1" + new string('}', 50_000)), "a", "depth"),
            // Entries.
            ["entry-number"] = new(() => Build($$"""{"{{t}}":5}"""), t, "not an object"),
            ["entry-array"] = new(() => Build($$"""{"{{t}}":[0,4]}"""), t, "not an object"),
            ["entry-null"] = new(() => Build($$"""{"{{t}}":null}"""), t, "not an object"),
            ["tensor-name-too-long"] = new(() => Build(Entry(new string('n', 5000), "U8", "[1]", "[0,1]"), 1), null, "exceeds the 4096-byte limit"),
            ["escaped-name-too-long"] = new(() => Build(Entry(string.Concat(Enumerable.Repeat("\\u00e9", 2100)), "U8", "[1]", "[0,1]"), 1), null, "a tensor name of 4200 bytes exceeds"),
            ["heavily-escaped-name"] = new(() => Build(Entry(string.Concat(Enumerable.Repeat("\\u0061", 4100)), "U8", "[1]", "[0,1]"), 1), null, "a tensor name of 24600 bytes exceeds"),
            ["duplicate-field"] = new(() => Build(Fields(t, okFields + ",\"dtype\":\"F32\""), 8), t, "two 'dtype'"),
            // dtype.
            ["missing-dtype"] = new(() => Build(Fields(t, "\"shape\":[2],\"data_offsets\":[0,8]"), 8), t, "no 'dtype'"),
            ["unknown-dtype"] = new(() => Build(Entry(t, "Q4", "[2]", "[0,8]"), 8), t, "unknown dtype 'Q4'"),
            ["lowercase-dtype"] = new(() => Build(Entry(t, "f32", "[2]", "[0,8]"), 8), t, "unknown dtype"),
            ["huge-unknown-dtype"] = new(() => Build(Entry(t, new string('Z', 200_000), "[2]", "[0,8]"), 8), t, "unknown dtype '<200000 bytes>'"),
            ["numeric-dtype"] = new(() => Build(Fields(t, "\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]"), 8), t, "not a string"),
            // shape.
            ["missing-shape"] = new(() => Build(Fields(t, "\"dtype\":\"F32\",\"data_offsets\":[0,8]"), 8), t, "no 'shape'"),
            ["shape-not-array"] = new(() => Build(Entry(t, "F32", "2", "[0,8]"), 8), t, "not an array"),
            ["negative-dimension"] = new(() => Build(Entry(t, "F32", "[-2]", "[0,8]"), 8), t, "negative"),
            ["string-dimension"] = new(() => Build(Entry(t, "F32", "[\"2\"]", "[0,8]"), 8), t, "not an integer"),
            ["float-dimension"] = new(() => Build(Entry(t, "F32", "[2.5]", "[0,8]"), 8), t, "not an integer"),
            ["exponent-dimension"] = new(() => Build(Entry(t, "F32", "[2e0]", "[0,8]"), 8), t, "not an integer"),
            ["dimension-beyond-int64"] = new(() => Build(Entry(t, "F32", "[99999999999999999999]", "[0,8]"), 8), t, "64-bit range"),
            ["element-count-overflow"] = new(() => Build(Entry(t, "F32", "[4294967296,4294967296]", "[0,8]"), 8), t, "overflows 64 bits"),
            ["byte-size-overflow"] = new(() => Build(Entry(t, "F32", "[2305843009213693952]", "[0,8]"), 8), t, "overflows 64 bits"),
            ["too-many-dimensions"] = new(() => Build(Entry(t, "U8", "[" + string.Join(",", Enumerable.Repeat("1", 200_000)) + "]", "[0,1]"), 1), t, "more than 64 dimensions"),
            // data_offsets.
            ["missing-offsets"] = new(() => Build(Fields(t, "\"dtype\":\"F32\",\"shape\":[2]"), 8), t, "no 'data_offsets'"),
            ["offsets-not-array"] = new(() => Build(Entry(t, "F32", "[2]", "8"), 8), t, "not a [begin, end] array"),
            ["offsets-short"] = new(() => Build(Entry(t, "F32", "[2]", "[0]"), 8), t, "1 values, not two"),
            ["offsets-long"] = new(() => Build(Entry(t, "F32", "[2]", "[0,8,16]"), 8), t, "more than two"),
            ["offsets-strings"] = new(() => Build(Entry(t, "F32", "[2]", "[\"0\",\"8\"]"), 8), t, "not an integer"),
            ["offsets-float"] = new(() => Build(Entry(t, "F32", "[2]", "[0,8.0]"), 8), t, "not an integer"),
            ["offsets-negative"] = new(() => Build(Entry(t, "F32", "[2]", "[-8,0]"), 8), t, "negative"),
            ["offsets-reversed"] = new(() => Build(Entry(t, "F32", "[2]", "[8,0]"), 8), t, "end before they begin"),
            ["offsets-beyond-data"] = new(() => Build(Entry(t, "F32", "[2]", "[0,8]"), 4), t, "outside the 4-byte data section"),
            ["offsets-int64-max"] = new(() => Build(Entry(t, "U8", "[9223372036854775807]", "[0,9223372036854775807]"), 4), t, "outside"),
            ["size-mismatch"] = new(() => Build(Entry(t, "F32", "[3]", "[0,8]"), 8), t, "needs 12 bytes but data_offsets span 8"),
            ["dtype-size-mismatch"] = new(() => Build(Entry(t, "F16", "[2]", "[0,8]"), 8), t, "needs 4 bytes"),
            // Layout of the data section.
            ["overlap"] = new(() => Build("{" + Entry("a", "F32", "[2]", "[0,8]")[1..^1] + "," + Entry("b", "F32", "[2]", "[4,12]")[1..^1] + "}", 12), "b", "overlap"),
            ["same-range-twice"] = new(() => Build("{" + Entry("a", "F32", "[2]", "[0,8]")[1..^1] + "," + Entry("b", "F32", "[2]", "[0,8]")[1..^1] + "}", 8), "b", "overlap"),
            ["gap"] = new(() => Build("{" + Entry("a", "F32", "[1]", "[0,4]")[1..^1] + "," + Entry("b", "F32", "[1]", "[8,12]")[1..^1] + "}", 12), "b", "gap of 4"),
            ["leading-gap"] = new(() => Build(Entry(t, "F32", "[1]", "[4,8]"), 8), t, "gap of 4"),
            ["trailing-bytes"] = new(() => Build(Entry(t, "F32", "[1]", "[0,4]"), 8), null, "4 bytes after the last tensor"),
            ["data-but-no-tensors"] = new(() => Build("{}", 16), null, "16 bytes after the last tensor"),
            // Names and metadata.
            ["duplicate-tensor-name"] = new(() => Build("{" + Entry(t, "F32", "[1]", "[0,4]")[1..^1] + "," + Entry(t, "F32", "[1]", "[4,8]")[1..^1] + "}", 8), t, "appears twice"),
            ["duplicate-escaped-name"] = new(() => Build("{" + Entry("ab", "F32", "[1]", "[0,4]")[1..^1] + "," + Entry("a\\u0062", "F32", "[1]", "[4,8]")[1..^1] + "}", 8), "ab", "appears twice"),
            ["duplicate-metadata"] = new(() => Build("""{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"}}"""), null, "two __metadata__"),
            ["duplicate-metadata-key"] = new(() => Build("""{"__metadata__":{"a":"1","a":"2"}}"""), null, "appears twice"),
            ["metadata-number-value"] = new(() => Build("""{"__metadata__":{"epochs":3}}"""), null, "not a string"),
            ["metadata-null-value"] = new(() => Build("""{"__metadata__":{"epochs":null}}"""), null, "not a string"),
            ["metadata-not-object"] = new(() => Build("""{"__metadata__":"pt"}"""), null, "not an object"),
            ["metadata-used-as-tensor"] = new(() => Build(Entry("__metadata__", "F32", "[1]", "[0,4]"), 4), null, "not a string"),
        };
        return c;
    }
}
