using SelfCascade.Imaging;

namespace SelfCascade.Evaluation;

/// <summary>
/// Native-resolution crops for patch-level fidelity (the paper's patch FID): from a high-resolution image, take
/// size×size windows so that fine detail is judged at the scale the base model was trained on.
/// </summary>
public static class ImageCrops
{
    /// <summary>The size×size window at (x, y).</summary>
    public static RgbImage Crop(RgbImage image, int x, int y, int size)
    {
        if (size < 1 || x < 0 || y < 0 || x + size > image.Width || y + size > image.Height)
            throw new ArgumentOutOfRangeException(nameof(size), $"crop {size}x{size} at ({x},{y}) leaves the {image.Width}x{image.Height} image");
        var crop = new RgbImage(size, size);
        for (int row = 0; row < size; row++)
            Array.Copy(image.Pixels, ((y + row) * image.Width + x) * 3, crop.Pixels, row * size * 3, size * 3);
        return crop;
    }

    /// <summary>All non-overlapping size×size windows of a grid anchored at the top-left corner, row by row.</summary>
    public static IReadOnlyList<RgbImage> Grid(RgbImage image, int size)
    {
        var crops = new List<RgbImage>();
        for (int y = 0; y + size <= image.Height; y += size)
            for (int x = 0; x + size <= image.Width; x += size)
                crops.Add(Crop(image, x, y, size));
        return crops;
    }

    /// <summary><paramref name="count"/> windows at uniformly random positions drawn from <paramref name="rng"/>.</summary>
    public static IReadOnlyList<RgbImage> Random(RgbImage image, int size, int count, Random rng)
    {
        if (size > image.Width || size > image.Height) throw new ArgumentOutOfRangeException(nameof(size), $"crop {size} exceeds the {image.Width}x{image.Height} image");
        var crops = new List<RgbImage>(count);
        for (int i = 0; i < count; i++)
            crops.Add(Crop(image, rng.Next(image.Width - size + 1), rng.Next(image.Height - size + 1), size));
        return crops;
    }

    /// <summary>Random crops from every image of a set, seeded: <paramref name="perImage"/> each, in image order.</summary>
    public static IReadOnlyList<RgbImage> RandomFromSet(IEnumerable<RgbImage> images, int size, int perImage, int seed)
    {
        var rng = new Random(seed);
        return images.SelectMany(img => Random(img, size, perImage, rng)).ToList();
    }

    /// <summary>Grid crops from every image of a set.</summary>
    public static IReadOnlyList<RgbImage> GridFromSet(IEnumerable<RgbImage> images, int size) =>
        images.SelectMany(img => Grid(img, size)).ToList();
}
