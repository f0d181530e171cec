using System.Globalization;

namespace SelfCascade.Data;

/// <summary>Wraps an Iconify icon body into a standalone SVG document.</summary>
public static class IconSvg
{
    /// <summary>
    /// <c>&lt;svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 W H"&gt;BODY&lt;/svg&gt;</c>; flips and quarter
    /// turns become a group transform following Iconify's iconToSVG (flips inside, rotation outside; an odd number
    /// of quarter turns swaps the viewBox's width and height).
    /// </summary>
    public static (string Svg, double Width, double Height) Wrap(string body, double width, double height,
        bool hFlip = false, bool vFlip = false, int rotate = 0)
    {
        var transforms = new List<string>();
        // Iconify: a horizontal and a vertical flip together are a half turn.
        if (hFlip && vFlip) { rotate += 2; hFlip = vFlip = false; }
        if (hFlip) transforms.Add($"translate({F(width)} 0) scale(-1 1)");
        if (vFlip) transforms.Add($"translate(0 {F(height)}) scale(1 -1)");
        double w = width, h = height;
        switch (((rotate % 4) + 4) % 4)
        {
            case 1: transforms.Insert(0, $"rotate(90 {F(height / 2)} {F(height / 2)})"); (w, h) = (height, width); break;
            case 2: transforms.Insert(0, $"rotate(180 {F(width / 2)} {F(height / 2)})"); break;
            case 3: transforms.Insert(0, $"rotate(-90 {F(width / 2)} {F(width / 2)})"); (w, h) = (height, width); break;
        }
        var inner = transforms.Count == 0 ? body : $"<g transform=\"{string.Join(' ', transforms)}\">{body}</g>";
        // Some bodies use xlink:href (SVG 1.1); the prefix must be declared for the XML to parse.
        var xlink = body.Contains("xlink:", StringComparison.Ordinal) ? " xmlns:xlink=\"http://www.w3.org/1999/xlink\"" : "";
        return ($"<svg xmlns=\"http://www.w3.org/2000/svg\"{xlink} viewBox=\"0 0 {F(w)} {F(h)}\">{inner}</svg>", w, h);
    }

    private static string F(double v) => v.ToString("0.######", CultureInfo.InvariantCulture);
}
