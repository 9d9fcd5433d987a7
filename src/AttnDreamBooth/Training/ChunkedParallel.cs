using static TorchSharp.torch;

namespace AttnDreamBooth.Training;

/// <summary>
/// Splits work over several flat buffers into chunks of at most a fixed number of elements and runs them on libtorch's
/// thread count, so the C# optimizer kernels use the cores libtorch is allowed to use. Small work runs on the caller's
/// thread: below one chunk, starting tasks costs more than it saves.
/// </summary>
internal static class ChunkedParallel
{
    /// <summary>Calls <paramref name="run"/>(item, start, count) for every chunk of every item of <paramref name="counts"/>;
    /// chunks start at multiples of <paramref name="chunkElements"/> within their item.</summary>
    public static void For(IReadOnlyList<long> counts, long chunkElements, Action<int, long, long> run)
    {
        long total = counts.Sum();
        int threads = Math.Max(1, get_num_threads());
        if (threads == 1 || total <= chunkElements)
        {
            for (int i = 0; i < counts.Count; i++) run(i, 0, counts[i]);
            return;
        }
        var chunks = new List<(int Item, long Start, long Count)>((int)(total / chunkElements) + counts.Count);
        for (int i = 0; i < counts.Count; i++)
        {
            for (long start = 0; start < counts[i]; start += chunkElements)
                chunks.Add((i, start, Math.Min(chunkElements, counts[i] - start)));
        }
        Parallel.For(0, chunks.Count, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            var (item, start, count) = chunks[c];
            run(item, start, count);
        });
    }
}
