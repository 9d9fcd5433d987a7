using AttnDreamBooth.Personalization;
using static TorchSharp.torch;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class TokenPositionsTests
{
    private const long V = 49408, Dog = 1929;

    [Fact]
    public void Finds_concept_and_following_category_per_row()
    {
        // Row 0: "a photo of a [V] dog"; row 1: "a [V] dog" (different positions per row).
        var ids = tensor(new long[,] { { 49406, 320, 1125, 539, 320, V, Dog, 49407 }, { 49406, 320, V, Dog, 49407, 49407, 49407, 49407 } });
        var v = TokenPositions.FindFirst(ids, V);
        Assert.Equal(new long[] { 5, 2 }, v.data<long>().ToArray());
        Assert.Equal(new long[] { 6, 3 }, TokenPositions.FindCategory(ids, v, Dog).data<long>().ToArray());
    }

    [Fact]
    public void Category_before_the_concept_is_found_when_none_follows()
    {
        long[] row = [49406, 320, Dog, 1125, V, 49407];
        Assert.Equal(2, TokenPositions.FindCategory(row, 4, Dog));
        long[] both = [49406, Dog, V, 320, Dog, 49407];
        Assert.Equal(4, TokenPositions.FindCategory(both, 2, Dog));
    }

    [Fact]
    public void Missing_tokens_name_the_row()
    {
        var ids = tensor(new long[,] { { 49406, V, Dog, 49407 }, { 49406, 320, 320, 49407 } });
        Assert.Contains("batch row 1", Assert.Throws<ArgumentException>(() => TokenPositions.FindFirst(ids, V)).Message);
        Assert.Contains("batch row 1", Assert.Throws<ArgumentException>(() => TokenPositions.FindCategory(ids, tensor(new long[] { 1, 1 }), Dog)).Message);
        Assert.Throws<ArgumentException>(() => TokenPositions.FindCategory(ids, tensor(new long[] { 1 }), Dog));
        Assert.Throws<ArgumentException>(() => TokenPositions.FindFirst(ones(2, 3), V));
    }
}
