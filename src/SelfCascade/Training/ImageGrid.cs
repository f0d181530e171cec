using SelfCascade.Imaging;

namespace SelfCascade.Training;

/// <summary>Composes images side by side on white, each enlarged by an integer factor (nearest neighbour).</summary>
public static class ImageGrid
{
    public static RgbImage Row(IReadOnlyList<RgbImage> images, int scale = 1, int gap = 0)
    {
        if (images.Count == 0) throw new ArgumentException("no images to arrange", nameof(images));
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale));
        int h = images.Max(i => i.Height) * scale;
        int w = images.Sum(i => i.Width * scale) + gap * (images.Count - 1);
        var grid = new RgbImage(w, h);
        Array.Fill(grid.Pixels, (byte)255);
        int x0 = 0;
        foreach (var img in images)
        {
            for (int y = 0; y < img.Height * scale; y++)
                for (int x = 0; x < img.Width * scale; x++)
                {
                    int src = ((y / scale) * img.Width + x / scale) * 3;
                    int dst = (y * w + x0 + x) * 3;
                    grid.Pixels[dst] = img.Pixels[src];
                    grid.Pixels[dst + 1] = img.Pixels[src + 1];
                    grid.Pixels[dst + 2] = img.Pixels[src + 2];
                }
            x0 += img.Width * scale + gap;
        }
        return grid;
    }
}
