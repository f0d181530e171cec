using SkiaSharp;

namespace SelfCascade.Tests.Training;

/// <summary>A small image folder made in the test: coloured shapes on white with captions, plus a corrupt file and
/// a too-small one (both must be skipped and counted).</summary>
internal static class SyntheticImages
{
    private static readonly (string Name, SKColor Color)[] Colours =
        [("red", new SKColor(220, 30, 30)), ("green", new SKColor(30, 170, 60)), ("blue", new SKColor(30, 60, 220)), ("yellow", new SKColor(230, 200, 20))];
    private static readonly string[] Shapes = ["circle", "square", "triangle"];

    /// <summary>Writes colours × shapes × <paramref name="variants"/> images of <paramref name="size"/> px (in
    /// sub-folders, to exercise the recursive scan) with captions; returns the count of good images.</summary>
    public static int Make(string dir, int size, int variants = 2, bool withBadFiles = true)
    {
        int n = 0;
        foreach (var (colourName, colour) in Colours)
            foreach (var shape in Shapes)
                for (int v = 0; v < variants; v++)
                {
                    var sub = Path.Combine(dir, shape);
                    Directory.CreateDirectory(sub);
                    var stem = Path.Combine(sub, $"{colourName}-{shape}-{v}");
                    File.WriteAllBytes(stem + ".png", Draw(size, shape, colour, v));
                    File.WriteAllText(stem + ".txt", $"a {colourName} {shape}\n");
                    n++;
                }
        if (withBadFiles)
        {
            File.WriteAllBytes(Path.Combine(dir, "corrupt.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3, 4, 5, 6, 7]);
            File.WriteAllBytes(Path.Combine(dir, "tiny.png"), Draw(size / 2, "circle", SKColors.Black, 0));
        }
        return n;
    }

    public static byte[] Draw(int size, string shape, SKColor colour, int variant)
    {
        var info = new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var surface = SKSurface.Create(info);
        var c = surface.Canvas;
        c.Clear(SKColors.White);
        using var paint = new SKPaint { Color = colour, IsAntialias = true, Style = SKPaintStyle.Fill };
        float r = size * (0.28f + 0.06f * variant), cx = size / 2f, cy = size / 2f;
        switch (shape)
        {
            case "circle": c.DrawCircle(cx, cy, r, paint); break;
            case "square": c.DrawRect(cx - r, cy - r, 2 * r, 2 * r, paint); break;
            default:
                // An isosceles triangle, one row at a time.
                for (float y = cy - r; y < cy + r; y += 0.5f)
                {
                    float half = r * (y - (cy - r)) / (2 * r);
                    c.DrawRect(cx - half, y, 2 * half, 0.5f, paint);
                }
                break;
        }
        using var img = surface.Snapshot();
        using var data = img.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>A preset JSON for a model small enough to train in seconds (16x16 images).</summary>
    public static string MicroPreset(string dir)
    {
        var path = Path.Combine(dir, "micro.json");
        File.WriteAllText(path, """
            {
              "unet": { "block_out_channels": [16, 32], "layers_per_block": 1, "attention_head_dim": [2, 4],
                        "cross_attention_dim": 32, "norm_num_groups": 8,
                        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"] },
              "text_encoder": { "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2 }
            }
            """);
        return path;
    }
}
