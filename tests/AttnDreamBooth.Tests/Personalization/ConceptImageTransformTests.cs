using AttnDreamBooth.Imaging;
using AttnDreamBooth.Personalization;
using AttnDreamBooth.Training;
using TorchSharp;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class ConceptImageTransformTests
{
    private static RgbImage HalfAndHalf(int width, int height, RgbColor left, RgbColor right)
    {
        var px = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            var c = x < width / 2 ? left : right;
            int i = (y * width + x) * 3;
            (px[i], px[i + 1], px[i + 2]) = (c.R, c.G, c.B);
        }
        return new RgbImage(width, height, px);
    }

    private static readonly RgbColor Red = new(255, 0, 0), Blue = new(0, 0, 255);

    [Fact]
    public void Without_random_it_resizes_the_shorter_side_and_center_crops()
    {
        var image = ConceptImageTransform.Augment(HalfAndHalf(80, 40, Red, Blue), 16, ImageAugmentationOptions.Official, random: null);
        Assert.Equal((16, 16), (image.Width, image.Height));
        // Resized to 32x16, the center crop spans x 8..23: left half red, right half blue.
        Assert.Equal(Red, image[2, 8]);
        Assert.Equal(Blue, image[13, 8]);
    }

    [Fact]
    public void Rotation_by_90_degrees_expands_the_canvas_counter_clockwise()
    {
        var rotated = ConceptImageTransform.Rotate(HalfAndHalf(40, 20, Red, Blue), 90);
        Assert.Equal((20, 40), (rotated.Width, rotated.Height));
        Assert.Equal(Blue, rotated[10, 5]);   // the right half turns to the top
        Assert.Equal(Red, rotated[10, 35]);

        var tilted = ConceptImageTransform.Rotate(HalfAndHalf(40, 40, Red, Red), 45);
        Assert.InRange(tilted.Width, 56, 58);  // 40 * sqrt(2) = 56.6
        Assert.Equal(RgbColor.Black, tilted[0, 0]);  // uncovered corners are black
        Assert.Equal(Red, tilted[tilted.Width / 2, tilted.Height / 2]);
    }

    [Fact]
    public void Flip_and_crop_move_pixels_exactly()
    {
        var flipped = ConceptImageTransform.FlipHorizontal(HalfAndHalf(10, 4, Red, Blue));
        Assert.Equal(Blue, flipped[0, 0]);
        Assert.Equal(Red, flipped[9, 3]);
        var crop = ConceptImageTransform.Crop(flipped, 4, 1, 3, 2);
        Assert.Equal((3, 2), (crop.Width, crop.Height));
        Assert.Equal(Blue, crop[0, 0]);
        Assert.Equal(Red, crop[1, 0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => ConceptImageTransform.Crop(flipped, 8, 0, 3, 2));
    }

    [Fact]
    public void Tensor_is_planar_rgb_in_minus_one_to_one()
    {
        var t = ConceptImageTransform.ToTensor(HalfAndHalf(4, 2, Red, new RgbColor(0, 0, 0)));
        Assert.Equal(new long[] { 3, 2, 4 }, t.shape);
        Assert.Equal(torch.float32, t.dtype);
        Assert.Equal(1f, t[0, 0, 0].item<float>());
        Assert.Equal(-1f, t[1, 0, 0].item<float>());
        Assert.Equal(-1f, t[0, 1, 3].item<float>());
        var mid = ConceptImageTransform.ToTensor(new RgbImage(1, 1, [128, 0, 255]));
        Assert.Equal((128 / 255f - 0.5f) / 0.5f, mid[0, 0, 0].item<float>());
    }

    [Fact]
    public void Augmentation_is_deterministic_per_seed_and_resumable()
    {
        var source = HalfAndHalf(90, 60, Red, Blue);
        var options = ImageAugmentationOptions.Official;
        var r1 = new SeededRandom(11);
        var first = Enumerable.Range(0, 6).Select(_ => ConceptImageTransform.Augment(source, 32, options, r1).Pixels).ToArray();
        var r2 = new SeededRandom(11);
        var second = Enumerable.Range(0, 3).Select(_ => ConceptImageTransform.Augment(source, 32, options, r2).Pixels).ToList();
        var resumed = SeededRandom.FromState(r2.GetState());
        second.AddRange(Enumerable.Range(0, 3).Select(_ => ConceptImageTransform.Augment(source, 32, options, resumed).Pixels));
        for (int i = 0; i < 6; i++) Assert.Equal(first[i], second[i]);
        // Six draws from one seed are not all the same picture, and another seed gives other pictures.
        Assert.Contains(first.Skip(1), p => !p.SequenceEqual(first[0]));
        var other = new SeededRandom(12);
        var otherPixels = ConceptImageTransform.Augment(source, 32, options, other).Pixels;
        Assert.Contains(first, p => !p.SequenceEqual(otherPixels));
    }

    [Fact]
    public void Disabled_augmentations_draw_nothing()
    {
        var source = HalfAndHalf(90, 60, Red, Blue);
        var random = new SeededRandom(3);
        var before = random.GetState();
        var image = ConceptImageTransform.Augment(source, 32, ImageAugmentationOptions.None, random);
        Assert.Equal(before, random.GetState());
        Assert.Equal(ConceptImageTransform.Augment(source, 32, ImageAugmentationOptions.Official, null).Pixels, image.Pixels);
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new ConceptImageOptions { Resolution = 500 }.Validate());
        Assert.Throws<ArgumentException>(() => new ConceptImageOptions { MinimumSide = 0 }.Validate());
        Assert.Throws<ArgumentException>(() => new ConceptImageOptions { Augmentation = new() { RotationProbability = 1.5 } }.Validate());
        Assert.Throws<ArgumentException>(() => new ConceptImageOptions { Augmentation = new() { HorizontalFlipProbability = double.NaN } }.Validate());
        Assert.Throws<ArgumentException>(() => new ConceptImageOptions { Augmentation = new() { MaxRotationDegrees = 200 } }.Validate());
        Assert.Throws<ArgumentException>(() => new TrainingDataOptions { VariantsPerImage = 0 }.Validate());
        new TrainingDataOptions().Validate();
    }
}
