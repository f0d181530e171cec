using SelfCascade.Imaging;

namespace SelfCascade.Pipelines;

/// <summary>
/// `--devices cuda:0,cuda:1,...`: one pipeline per device, the images of a request split into contiguous chunks, one
/// chunk per device, all devices working at once; images come back in order. Each image is generated on its own
/// with seed + its index, so an image does not depend on how many devices share the work (nor on which one runs it):
/// any device count gives the same images in the same order.
/// </summary>
public static class MultiDeviceGeneration
{
    /// <summary>Contiguous chunks, as even as possible, earlier devices taking the remainder: 5 on 2 = [0,3) [3,5).</summary>
    public static IReadOnlyList<(int Start, int Count)> Split(int images, int devices)
    {
        if (images < 1) throw new ArgumentException($"num-images must be at least 1 (got {images})");
        if (devices < 1) throw new ArgumentException("at least one device is needed");
        var chunks = new List<(int, int)>();
        int start = 0;
        for (int d = 0; d < devices; d++)
        {
            int count = images / devices + (d < images % devices ? 1 : 0);
            chunks.Add((start, count));
            start += count;
        }
        return chunks;
    }

    /// <summary>The request for image <paramref name="index"/>: one image, seed + index.</summary>
    public static GenerationRequest ForImage(GenerationRequest r, int index) => new(r.Prompt)
    {
        NegativePrompt = r.NegativePrompt, Width = r.Width, Height = r.Height, Seed = r.Seed + index, Steps = r.Steps,
        Guidance = r.Guidance, NumImages = 1,
    };

    /// <summary>
    /// Generates <c>request.NumImages</c> images over the pipelines (one thread per pipeline; dispose scopes are per
    /// thread and each pipeline is used by one thread only). <paramref name="toCascade"/> turns a one-image request
    /// into the cascade request for a pipeline (method, stages, injector).
    /// </summary>
    public static IReadOnlyList<RgbImage> Generate(IReadOnlyList<StableDiffusionPipeline> pipelines, GenerationRequest request,
        Func<StableDiffusionPipeline, GenerationRequest, CascadeRequest> toCascade, CancellationToken cancellationToken = default)
    {
        var chunks = Split(request.NumImages, pipelines.Count);
        var images = new RgbImage[request.NumImages];
        var tasks = new List<Task>();
        for (int d = 0; d < pipelines.Count; d++)
        {
            var pipe = pipelines[d];
            var (start, count) = chunks[d];
            if (count == 0) continue;
            tasks.Add(Task.Factory.StartNew(() =>
            {
                for (int i = start; i < start + count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var result = CascadeGenerator.Generate(pipe, toCascade(pipe, ForImage(request, i)), null, cancellationToken);
                    images[i] = result.Images[0];
                }
            }, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default));
        }
        try { Task.WaitAll(tasks.ToArray(), cancellationToken); }
        catch (AggregateException e) when (e.InnerExceptions.Count >= 1) { throw e.InnerExceptions[0]; }
        return images;
    }
}
