using SelfCascade.Models.Unet;

namespace SelfCascade.Cascade.Upsamplers;

/// <summary>
/// Where an upsampled low-res feature is added: the hidden state leaving down block <see cref="Index"/>
/// (<see cref="UNetBlockKind.Down"/>) or the mid block (<see cref="UNetBlockKind.Mid"/>, index 0). Written "down0",
/// "down1", …, "mid".
/// </summary>
public readonly record struct InjectionPoint(UNetBlockKind Kind, int Index)
{
    public static InjectionPoint Down(int index) => new(UNetBlockKind.Down, index);
    public static readonly InjectionPoint Mid = new(UNetBlockKind.Mid, 0);

    public override string ToString() => Kind == UNetBlockKind.Mid ? "mid" : $"down{Index}";

    public static InjectionPoint Parse(string text)
    {
        var s = text.Trim().ToLowerInvariant();
        if (s == "mid") return Mid;
        if (s.StartsWith("down", StringComparison.Ordinal) && int.TryParse(s.AsSpan(4), out int i) && i >= 0) return Down(i);
        throw new ArgumentException($"bad injection point '{text}' (expected 'down<k>' or 'mid')", nameof(text));
    }

    /// <summary>
    /// The released choice: the hidden state leaving the first three down blocks (all of SDXL's three; SD 1.x/2.x's
    /// blocks 0..2, i.e. 0..n-2 of their four) and the mid block, four points in both cases, matching the released
    /// `feature_upsampler0..3`. A smaller UNet gets all its down blocks and the mid block.
    /// </summary>
    public static IReadOnlyList<InjectionPoint> ReleasedDefault(UNet2DConditionConfig config)
    {
        var points = new List<InjectionPoint>();
        for (int i = 0; i < Math.Min(3, config.NumBlocks); i++) points.Add(Down(i));
        points.Add(Mid);
        return points;
    }

    /// <summary>The channel width of the hidden state at this point of a UNet with <paramref name="config"/>.</summary>
    public int Channels(UNet2DConditionConfig config)
    {
        if (Kind == UNetBlockKind.Mid) return config.BlockOutChannels[^1];
        if (Kind != UNetBlockKind.Down || Index < 0 || Index >= config.NumBlocks)
            throw new ArgumentException($"injection point {this} does not exist in a UNet with {config.NumBlocks} down blocks");
        return config.BlockOutChannels[Index];
    }
}
