using static TorchSharp.torch;
using static AttnDreamBooth.KeptScalars;

namespace AttnDreamBooth.Tests.Models.Blocks;

/// <summary>
/// Makes reads of memory a kernel never wrote visible: allocates NaN-filled tensors of many sizes and frees them, so the
/// allocator hands that memory to the next tensors. A kernel that reads lanes it did not write then yields NaN instead
/// of whatever harmless value happened to be there.
/// </summary>
internal static class FreedMemory
{
    public static void PoisonWithNaN()
    {
        for (int power = 10; power <= 20; power++)
        {
            using var junk = full([1L << power], Kept(float.NaN), ScalarType.Float32);
        }
    }
}
