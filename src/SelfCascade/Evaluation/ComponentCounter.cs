using SelfCascade.Imaging;

namespace SelfCascade.Evaluation;

/// <summary>How foreground objects are separated from the white background.</summary>
/// <param name="ForegroundThreshold">A pixel is foreground when <c>max_c (255 - p_c) &gt; threshold</c>, i.e. its
/// largest channel distance from white exceeds this many levels. 40 keeps faint anti-aliased fringes out.</param>
/// <param name="MinAreaFraction">Components with fewer than <c>MinAreaFraction × W × H</c> pixels are ignored
/// (specks, noise). 0.001 = 0.1 % of the image.</param>
/// <param name="Connectivity">8 (default: diagonal neighbours join, so thin anti-aliased diagonals stay one
/// object) or 4.</param>
public sealed record ComponentOptions(int ForegroundThreshold = 40, double MinAreaFraction = 0.001, int Connectivity = 8)
{
    public static ComponentOptions Default { get; } = new();

    internal void Validate()
    {
        if (ForegroundThreshold is < 0 or > 254) throw new ArgumentOutOfRangeException(nameof(ForegroundThreshold), ForegroundThreshold, "threshold must be in 0..254");
        if (MinAreaFraction is < 0 or >= 1 || double.IsNaN(MinAreaFraction)) throw new ArgumentOutOfRangeException(nameof(MinAreaFraction), MinAreaFraction, "fraction must be in [0, 1)");
        if (Connectivity is not (4 or 8)) throw new ArgumentOutOfRangeException(nameof(Connectivity), Connectivity, "connectivity is 4 or 8");
    }
}

/// <summary>Connected foreground components against a white background (the repetition metric's object count).</summary>
public static class ComponentCounter
{
    /// <summary>Foreground mask, row-major: <c>fg(x,y) = max_c (255 - p_c(x,y)) &gt; threshold</c>.</summary>
    public static bool[] ForegroundMask(RgbImage image, int threshold)
    {
        var mask = new bool[image.Width * image.Height];
        var p = image.Pixels;
        for (int i = 0, j = 0; i < mask.Length; i++, j += 3)
        {
            int d = 255 - Math.Min(p[j], Math.Min(p[j + 1], p[j + 2]));
            mask[i] = d > threshold;
        }
        return mask;
    }

    /// <summary>
    /// Sizes (pixel counts) of the connected components of a mask, in scan order of their first pixel.
    /// Breadth-first flood fill with one preallocated queue: O(W × H).
    /// </summary>
    public static IReadOnlyList<int> ComponentSizes(bool[] mask, int width, int height, int connectivity = 8)
    {
        if (mask.Length != width * height) throw new ArgumentException($"mask holds {mask.Length} pixels, {width}x{height} needs {width * height}");
        if (connectivity is not (4 or 8)) throw new ArgumentOutOfRangeException(nameof(connectivity), connectivity, "connectivity is 4 or 8");
        var seen = new bool[mask.Length];
        var queue = new int[mask.Length];
        var sizes = new List<int>();
        for (int start = 0; start < mask.Length; start++)
        {
            if (!mask[start] || seen[start]) continue;
            sizes.Add(FloodFill(mask, seen, queue, width, height, start, connectivity));
        }
        return sizes;
    }

    /// <summary>Number of components of at least <c>MinAreaFraction × W × H</c> pixels.</summary>
    public static int CountComponents(RgbImage image, ComponentOptions? options = null)
    {
        var o = options ?? ComponentOptions.Default;
        o.Validate();
        var sizes = ComponentSizes(ForegroundMask(image, o.ForegroundThreshold), image.Width, image.Height, o.Connectivity);
        double minArea = o.MinAreaFraction * image.Width * image.Height;
        return sizes.Count(s => s >= minArea);
    }

    private static int FloodFill(bool[] mask, bool[] seen, int[] queue, int width, int height, int start, int connectivity)
    {
        int head = 0, tail = 0;
        queue[tail++] = start;
        seen[start] = true;
        while (head < tail)
        {
            int idx = queue[head++];
            int x = idx % width, y = idx / width;
            for (int dy = -1; dy <= 1; dy++)
            {
                int ny = y + dy;
                if (ny < 0 || ny >= height) continue;
                for (int dx = -1; dx <= 1; dx++)
                {
                    if (dx == 0 && dy == 0) continue;
                    if (connectivity == 4 && dx != 0 && dy != 0) continue;
                    int nx = x + dx;
                    if (nx < 0 || nx >= width) continue;
                    int n = ny * width + nx;
                    if (!mask[n] || seen[n]) continue;
                    seen[n] = true;
                    queue[tail++] = n;
                }
            }
        }
        return tail;
    }
}
