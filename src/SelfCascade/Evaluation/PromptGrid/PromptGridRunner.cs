using System.Diagnostics;
using System.Globalization;
using SelfCascade.Cascade;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;

namespace SelfCascade.Evaluation.PromptGrid;

/// <summary>What a model card's prompt grid shows: each prompt at each seed, natively and through the self-cascade.</summary>
public sealed record PromptGridOptions
{
    public required IReadOnlyList<string> Prompts { get; init; }
    public IReadOnlyList<long> Seeds { get; init; } = [0, 1];
    /// <summary>The cascade's target side in pixels (square).</summary>
    public required int Size { get; init; }
    public int Steps { get; init; } = 25;
    /// <summary>Null = the model's default.</summary>
    public double? Guidance { get; init; }
    /// <summary>Null = the model's default.</summary>
    public double? PivotStrength { get; init; }
    /// <summary>Trained feature upsamplers (the tuned cascade); null = tuning-free.</summary>
    public IStageFeatureInjector? Injector { get; init; }
}

/// <summary>One prompt and seed: the cascade's own base-stage image (native size) and its final image.</summary>
public sealed record PromptGridCell(string Prompt, long Seed, RgbImage Native, RgbImage Cascade, double Seconds);

/// <summary>The cells in prompt-major order (prompt 0 seed 0, prompt 0 seed 1, ...), the native and target sizes.</summary>
public sealed record PromptGridImages(IReadOnlyList<PromptGridCell> Cells, IReadOnlyList<long> Seeds, int NativeSize, int Size, int Steps,
    double Guidance, double PivotStrength);

/// <summary>
/// The prompt grid for model cards (`selfcascade prompt-grid`): every prompt at every seed through the normal
/// self-cascade path (`generate --size`), keeping the base stage's image, so the native-size sample shown is exactly
/// the one the cascade started from (stage 0 is text-to-image at the native size with the same seed, steps and
/// guidance: the image `generate` gives at the native size), sampled once.
/// </summary>
public static class PromptGridRunner
{
    public static PromptGridImages Generate(StableDiffusionPipeline pipe, PromptGridOptions o, IProgress<string>? progress = null,
        CancellationToken ct = default)
    {
        if (o.Prompts.Count == 0) throw new ArgumentException("the prompt grid needs at least one prompt");
        if (o.Prompts.FirstOrDefault(string.IsNullOrWhiteSpace) is not null) throw new ArgumentException("a prompt is empty");
        if (o.Seeds.Count == 0) throw new ArgumentException("the prompt grid needs at least one seed");
        if (o.Size < pipe.NativeSize) throw new ArgumentException($"--size {o.Size} is below the model's native size {pipe.NativeSize}");
        var cells = new List<PromptGridCell>();
        int total = o.Prompts.Count * o.Seeds.Count;
        foreach (var prompt in o.Prompts)
            foreach (var seed in o.Seeds)
            {
                ct.ThrowIfCancellationRequested();
                var sw = Stopwatch.StartNew();
                using var result = CascadeGenerator.Generate(pipe, new CascadeRequest
                {
                    Request = new GenerationRequest(prompt) { Seed = seed, Steps = o.Steps, Guidance = o.Guidance, Width = o.Size, Height = o.Size },
                    Method = GenerationMethod.SelfCascade, PivotStrength = o.PivotStrength, Injector = o.Injector, KeepStageImages = true,
                }, null, ct);
                var native = result.StageImages[0];
                if (native.Width != pipe.NativeSize || native.Height != pipe.NativeSize)
                    throw new InvalidOperationException($"the cascade's base stage is {native.Width}x{native.Height}, not the native {pipe.NativeSize} px");
                cells.Add(new PromptGridCell(prompt, seed, native, result.Images[0], sw.Elapsed.TotalSeconds));
                progress?.Report(string.Create(CultureInfo.InvariantCulture,
                    $"[{cells.Count}/{total}] \"{prompt}\" seed {seed}: {string.Join(" -> ", result.Stages.Select(s => s.Width))} px, {sw.Elapsed.TotalSeconds:F1} s"));
            }
        return new PromptGridImages(cells, o.Seeds, pipe.NativeSize, o.Size, o.Steps, o.Guidance ?? pipe.DefaultGuidance, o.PivotStrength ?? pipe.DefaultPivotStrength);
    }

    /// <summary>
    /// One row per prompt; for each seed the native image (nearest-neighbour enlarged to the target size, so pixels
    /// stay visible) then the cascade's, labelled like the `compare` grid (<see cref="ImageGrid.Compose"/>).
    /// </summary>
    public static RgbImage Grid(PromptGridImages images)
    {
        var list = new List<(RgbImage, string)>();
        foreach (var c in images.Cells)
        {
            list.Add((NearestResize(c.Native, images.Size), string.Create(CultureInfo.InvariantCulture, $"{c.Prompt}, seed {c.Seed}, {images.NativeSize} px")));
            list.Add((c.Cascade, string.Create(CultureInfo.InvariantCulture, $"{c.Prompt}, seed {c.Seed}, {images.Size} px")));
        }
        return ImageGrid.Compose(list, 2 * images.Seeds.Count);
    }

    /// <summary>Nearest-neighbour resize to size×size: target pixel (x, y) takes source pixel (x·w/size, y·h/size).</summary>
    public static RgbImage NearestResize(RgbImage image, int size)
    {
        var result = new RgbImage(size, size);
        for (int y = 0; y < size; y++)
        {
            int sy = (int)((long)y * image.Height / size);
            for (int x = 0; x < size; x++)
            {
                int sx = (int)((long)x * image.Width / size);
                Array.Copy(image.Pixels, (sy * image.Width + sx) * 3, result.Pixels, (y * size + x) * 3, 3);
            }
        }
        return result;
    }
}
