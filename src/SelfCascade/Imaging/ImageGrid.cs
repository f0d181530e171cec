namespace SelfCascade.Imaging;

/// <summary>Side-by-side grids of images with a label under each (the `compare` command, previews, benchmarks).</summary>
public static class ImageGrid
{
    /// <summary>
    /// Lays images out in <paramref name="columns"/> columns on white, each cell as large as the largest image, a
    /// label strip (built-in bitmap font, scaled to the cell) under each; images are centred, never resized.
    /// </summary>
    public static RgbImage Compose(IReadOnlyList<(RgbImage Image, string Label)> cells, int columns = 0, int padding = 8)
    {
        if (cells.Count == 0) throw new ArgumentException("a grid needs at least one image");
        if (columns <= 0) columns = cells.Count;
        int cellW = cells.Max(c => c.Image.Width), cellH = cells.Max(c => c.Image.Height);
        int scale = Math.Clamp(cellW / 128, 1, 4);
        int labelH = (BitmapFont.GlyphHeight + 4) * scale * 2;
        int rows = (cells.Count + columns - 1) / columns;
        int width = columns * (cellW + padding) + padding, height = rows * (cellH + labelH + padding) + padding;
        var grid = new RgbImage(width, height);
        Array.Fill(grid.Pixels, (byte)255);
        for (int k = 0; k < cells.Count; k++)
        {
            var (img, label) = cells[k];
            int cx = padding + (k % columns) * (cellW + padding), cy = padding + (k / columns) * (cellH + labelH + padding);
            int ox = cx + (cellW - img.Width) / 2, oy = cy + (cellH - img.Height) / 2;
            for (int y = 0; y < img.Height; y++)
                Array.Copy(img.Pixels, y * img.Width * 3, grid.Pixels, ((oy + y) * width + ox) * 3, img.Width * 3);
            // Up to two lines of label, cut to the cell width.
            int maxChars = Math.Max(1, (cellW + scale) / ((BitmapFont.GlyphWidth + 1) * scale));
            var lines = Wrap(label, maxChars).Take(2).ToList();
            for (int l = 0; l < lines.Count; l++)
            {
                int tw = BitmapFont.Measure(lines[l], scale);
                BitmapFont.Draw(grid, lines[l], cx + Math.Max(0, (cellW - tw) / 2), cy + cellH + 2 * scale + l * (BitmapFont.GlyphHeight + 2) * scale, (20, 20, 20), scale);
            }
        }
        return grid;
    }

    private static IEnumerable<string> Wrap(string text, int width)
    {
        var line = "";
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var w = word.Length > width ? word[..width] : word;
            if (line.Length == 0) line = w;
            else if (line.Length + 1 + w.Length <= width) line += " " + w;
            else { yield return line; line = w; }
        }
        if (line.Length > 0) yield return line;
    }
}
