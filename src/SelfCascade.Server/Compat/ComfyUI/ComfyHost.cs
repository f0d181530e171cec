using System.Text.Json.Nodes;
using SelfCascade.Imaging;
using SelfCascade.Pipelines;

namespace SelfCascade.Server.Compat.ComfyUI;

/// <summary>A saved image as ComfyUI names it in "executed" messages and /history: filename, subfolder, type (output|temp|input).</summary>
public sealed record ComfyFileRef(string Filename, string Subfolder, string Type)
{
    public JsonObject ToJson() => new() { ["filename"] = Filename, ["subfolder"] = Subfolder, ["type"] = Type };
}

/// <summary>What graph execution needs from the server: models, files and upsamplers. Names are validated by the host.</summary>
public interface IComfyHost
{
    /// <summary>The loaded pipeline of a checkpoint name (one of <see cref="ComfyCatalogContext.Checkpoints"/>).</summary>
    StableDiffusionPipeline Pipeline(string checkpoint);

    /// <summary>An uploaded image by the name /upload/image returned (optionally "subfolder/name").</summary>
    RgbImage LoadInputImage(string name);

    /// <summary>Writes a PNG (with its text chunks) to the output folder (<paramref name="type"/> "output") or temp folder ("temp").</summary>
    ComfyFileRef SaveImage(RgbImage image, string filenamePrefix, string type, IReadOnlyDictionary<string, string> pngText);

    /// <summary>A feature-upsampler injector by catalog name for the pipeline's UNet (disposed by the caller).</summary>
    SelfCascade.Cascade.IStageFeatureInjector CreateUpsamplers(string name, StableDiffusionPipeline pipe);

    /// <summary>Merges served LoRAs (by catalog name) into the pipeline until the result is disposed (weights restored bit for bit).</summary>
    IDisposable ApplyLoras(StableDiffusionPipeline pipe, IReadOnlyList<SelfCascade.Server.Extras.LoraFileUseByName> loras);
}

/// <summary>Execution events, as ComfyUI sends them over /ws (the caller adds prompt_id).</summary>
public interface IComfyEvents
{
    void Executing(string nodeId);
    void Progress(string nodeId, int value, int max);
    void Executed(string nodeId, JsonObject output);
}

/// <summary>A node failed while running: ComfyUI's execution_error fields.</summary>
public sealed class ComfyExecutionException(string nodeId, string classType, IReadOnlyList<string> executed, Exception inner)
    : Exception($"{classType} (node {nodeId}): {inner.Message}", inner)
{
    public string NodeId { get; } = nodeId;
    public string ClassType { get; } = classType;
    public IReadOnlyList<string> Executed { get; } = executed;
    public bool Interrupted => InnerException is OperationCanceledException;
}
