using System.Globalization;

namespace SelfCascade.Cascade;

/// <summary>An image size in pixels, width by height (the CLI's <c>WxH</c>).</summary>
public readonly record struct PixelSize(int Width, int Height)
{
    public long Pixels => (long)Width * Height;
    public double Aspect => (double)Width / Height;

    public override string ToString() => $"{Width}x{Height}";

    /// <summary>Parses <c>WxH</c> (also <c>W×H</c>, <c>W*H</c>, or a single number for a square); throws ArgumentException with the input quoted.</summary>
    public static PixelSize Parse(string text)
    {
        if (TryParse(text, out var size)) return size;
        throw new ArgumentException($"'{text}' is not a size: expected WIDTHxHEIGHT in pixels, e.g. 1024x768");
    }

    public static bool TryParse(string? text, out PixelSize size)
    {
        size = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var parts = text.Trim().Split(['x', 'X', '×', '*']);
        if (parts.Length == 1) parts = [parts[0], parts[0]];
        if (parts.Length != 2) return false;
        if (!int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var w)) return false;
        if (!int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var h)) return false;
        size = new PixelSize(w, h);
        return true;
    }
}
