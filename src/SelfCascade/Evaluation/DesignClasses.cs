using SelfCascade.Data;
using SelfCascade.Imaging;
using static TorchSharp.torch;

namespace SelfCascade.Evaluation;

/// <summary>
/// The classes the benchmark's feature network tells apart: the distinct captions of one dataset split, in ordinal
/// order. Both sets' designs of a caption ("red heart" from fluent-emoji-flat and from noto) are one class, because
/// a prompt names a caption, not a set; prompt-match accuracy asks whether a generated image is classified as it.
/// </summary>
public sealed class DesignClasses
{
    public IReadOnlyList<string> Captions { get; }
    public IReadOnlyList<DatasetEntry> Entries { get; }
    private readonly Dictionary<string, int> _index;

    public DesignClasses(IReadOnlyList<DatasetEntry> entries)
    {
        Entries = entries;
        Captions = entries.Select(e => e.Caption).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        _index = Captions.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
    }

    /// <summary>The designs of one split in a dataset folder made by `selfcascade data`.</summary>
    public static DesignClasses FromDataset(string dataDir, Split split) =>
        new(DatasetManifest.ReadEntries(Path.Combine(dataDir, "manifest.json")).Where(e => e.Split == split)
            .OrderBy(e => e.Id, StringComparer.Ordinal).ToList());

    /// <summary>The class of a caption, or -1 when the caption is not one of the classes.</summary>
    public int LabelOf(string caption) => _index.TryGetValue(caption, out var i) ? i : -1;

    /// <summary>Every design's render at each size (missing files skipped), labelled by caption.</summary>
    public List<(RgbImage Image, int Label)> LoadRenders(string dataDir, Split split, IEnumerable<int> sizes)
    {
        var data = new List<(RgbImage, int)>();
        foreach (var size in sizes)
            foreach (var e in Entries)
            {
                var path = Path.Combine(dataDir, DatasetSummary.ImagePath(size, split, e.Id));
                if (File.Exists(path)) data.Add((RgbImage.Load(path), LabelOf(e.Caption)));
            }
        return data;
    }

    /// <summary>
    /// Held-out test images: each source image (e.g. the 256 px renders, which training never sees) resized
    /// (antialiased) to <paramref name="size"/> and perturbed with <paramref name="perturbation"/>'s augmentation drawn
    /// from <paramref name="seed"/> (a stream training does not use). Null perturbation = resize only.
    /// </summary>
    public static List<(RgbImage Image, int Label)> HeldOut(IReadOnlyList<(RgbImage Image, int Label)> sources, int size,
        FeatureNetTrainOptions? perturbation, int seed, int batchSize = 64)
    {
        var rng = new Random(seed);
        using var generator = new Generator((ulong)seed, CPU);
        var result = new List<(RgbImage, int)>();
        for (int start = 0; start < sources.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = sources.Skip(start).Take(batchSize).ToList();
            var x = cat(batch.Select(s => ImageTensors.ResizeAntialiased(s.Image.ToTensor(), size, size)).ToList(), 0);
            if (perturbation is not null) x = FeatureNetTrainer.Augment(x, rng, generator, perturbation);
            for (int i = 0; i < batch.Count; i++) result.Add((RgbImage.FromDecoderOutput(x[i]), batch[i].Label));
        }
        return result;
    }
}
