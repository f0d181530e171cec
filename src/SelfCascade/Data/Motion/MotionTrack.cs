namespace SelfCascade.Data.Motion;

/// <summary>
/// The ground truth of one frame. <see cref="Affine"/> maps a point of the still design (in the pixel coordinates of
/// the unmoved frame: origin at the top-left corner, pixel centres at +0.5) to where it appears in this frame:
/// <c>x' = a x + b y + tx, y' = c x + d y + ty</c>, stored as [a, b, tx, c, d, ty]. <see cref="Colour"/> is the
/// 3x3 matrix (row-major) applied to the design's RGB values scaled to [0, 1] (as stored, sRGB-encoded) (identity unless the hue shifts).
/// </summary>
public sealed record MotionFrame(double[] Affine, double[] Colour)
{
    public static readonly double[] IdentityColour = [1, 0, 0, 0, 1, 0, 0, 0, 1];

    /// <summary>Where design point (x, y) shows in this frame.</summary>
    public (double X, double Y) Apply(double x, double y) =>
        (Affine[0] * x + Affine[1] * y + Affine[2], Affine[3] * x + Affine[4] * y + Affine[5]);

    /// <summary>The design point shown at frame point (x, y) (the inverse map the renderer samples with).</summary>
    public (double X, double Y) Invert(double x, double y)
    {
        double a = Affine[0], b = Affine[1], c = Affine[3], d = Affine[4];
        double det = a * d - b * c;
        double px = x - Affine[2], py = y - Affine[5];
        return ((d * px - b * py) / det, (-c * px + a * py) / det);
    }
}

/// <summary>
/// A clip's motion: the kind, its scalar parameters (pixels or degrees per frame, scale factor per frame, bounce
/// height), and every frame's transform, so a temporal-consistency metric can predict frame t from frame t-1.
/// </summary>
public sealed record MotionTrack(MotionKind Kind, IReadOnlyDictionary<string, double> Parameters, IReadOnlyList<MotionFrame> Frames)
{
    /// <summary>
    /// The map from frame <paramref name="from"/>'s pixel coordinates to frame <paramref name="to"/>'s
    /// (Affine_to ∘ Affine_from⁻¹), as [a, b, tx, c, d, ty].
    /// </summary>
    public double[] Between(int from, int to)
    {
        var f = Frames[from].Affine; var g = Frames[to].Affine;
        double det = f[0] * f[4] - f[1] * f[3];
        // Inverse of f.
        double ia = f[4] / det, ib = -f[1] / det, ic = -f[3] / det, id = f[0] / det;
        double itx = -(ia * f[2] + ib * f[5]), ity = -(ic * f[2] + id * f[5]);
        return
        [
            g[0] * ia + g[1] * ic, g[0] * ib + g[1] * id, g[0] * itx + g[1] * ity + g[2],
            g[3] * ia + g[4] * ic, g[3] * ib + g[4] * id, g[3] * itx + g[4] * ity + g[5],
        ];
    }
}
