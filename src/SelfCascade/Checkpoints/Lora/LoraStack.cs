using SelfCascade.Pipelines;

namespace SelfCascade.Checkpoints.Lora;

/// <summary>One LoRA file to merge: its path and its scales for the UNet and the text encoder(s) (equal for `--lora FILE:SCALE`).</summary>
public sealed record LoraFileUse(string Path, double UnetScale, double TextEncoderScale)
{
    public LoraFileUse(string path, double scale) : this(path, scale, scale) { }
}

/// <summary>
/// Several LoRA files merged into a pipeline in order, as one disposable: disposing it restores the weights bit for
/// bit (the last applied first); a failure part way restores what was merged before rethrowing. The one code path of
/// the CLI's --lora and the server's LoRA jobs.
/// </summary>
public sealed class LoraStack : IDisposable
{
    private readonly Stack<LoraApplication> _applied = new();

    /// <summary>The merges, in the order applied.</summary>
    public IReadOnlyList<LoraApplication> Applied => _applied.Reverse().ToList();

    private LoraStack() { }

    /// <param name="applied">Called after each file is merged (e.g. to log how many layers matched).</param>
    public static LoraStack Apply(StableDiffusionPipeline pipe, IEnumerable<LoraFileUse> loras, bool lenient = false,
        Action<LoraFileUse, LoraApplication>? applied = null)
    {
        var stack = new LoraStack();
        try
        {
            foreach (var use in loras)
            {
                using var set = LoraSet.Load(use.Path);
                var app = LoraApplication.Apply(pipe, set, use.UnetScale, use.TextEncoderScale, lenient);
                stack._applied.Push(app);
                applied?.Invoke(use, app);
            }
            return stack;
        }
        catch
        {
            stack.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        while (_applied.Count > 0) _applied.Pop().Dispose();
    }
}
