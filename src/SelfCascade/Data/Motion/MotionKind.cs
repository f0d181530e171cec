namespace SelfCascade.Data.Motion;

/// <summary>The synthetic motions of the clip dataset; each clip has exactly one.</summary>
public enum MotionKind
{
    MoveLeft, MoveRight, MoveUp, MoveDown,
    ZoomIn, ZoomOut,
    RotateClockwise, RotateCounterclockwise,
    Bounce,
    ColourShift,
}

public static class MotionKinds
{
    public static readonly IReadOnlyList<MotionKind> All = Enum.GetValues<MotionKind>();

    /// <summary>The words appended to the design's caption: "red heart, zooming in".</summary>
    public static string Phrase(MotionKind kind) => kind switch
    {
        MotionKind.MoveLeft => "moving left",
        MotionKind.MoveRight => "moving right",
        MotionKind.MoveUp => "moving up",
        MotionKind.MoveDown => "moving down",
        MotionKind.ZoomIn => "zooming in",
        MotionKind.ZoomOut => "zooming out",
        MotionKind.RotateClockwise => "rotating clockwise",
        MotionKind.RotateCounterclockwise => "rotating counterclockwise",
        MotionKind.Bounce => "bouncing",
        MotionKind.ColourShift => "changing colour",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Stable lower-case names for files and manifests (move-left, zoom-in, ...).</summary>
    public static string Name(MotionKind kind) => kind switch
    {
        MotionKind.MoveLeft => "move-left",
        MotionKind.MoveRight => "move-right",
        MotionKind.MoveUp => "move-up",
        MotionKind.MoveDown => "move-down",
        MotionKind.ZoomIn => "zoom-in",
        MotionKind.ZoomOut => "zoom-out",
        MotionKind.RotateClockwise => "rotate-cw",
        MotionKind.RotateCounterclockwise => "rotate-ccw",
        MotionKind.Bounce => "bounce",
        MotionKind.ColourShift => "colour-shift",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static MotionKind Parse(string name)
    {
        foreach (var k in All) if (Name(k) == name) return k;
        throw new ArgumentException($"unknown motion '{name}'; valid: {string.Join(", ", All.Select(Name))}");
    }
}
