using SelfCascade.IO;
using SelfCascade.Models.Clip;

namespace SelfCascade.Checkpoints;

/// <summary>
/// What a pipeline loads from, whatever the user pointed at: the component set of a diffusers folder (configs +
/// weights + tokenizers per component). A diffusers folder, a single-file checkpoint and (through the hub resolver)
/// a hub id all look like this, so everything downstream still sees "a model folder" (docs/ARCHITECTURE.md §1).
/// Weight sources it hands out stay open until it is disposed.
/// </summary>
public interface IModelComponents : IDisposable
{
    /// <summary>The folder or file (for messages and PNG metadata).</summary>
    string Source { get; }

    ModelFamily Family { get; }

    /// <summary>model_index.json (the pipeline class, force_zeros_for_empty_prompt, _selfcascade_defaults).</summary>
    ConfigJson ModelIndex { get; }

    /// <summary>Whether the model has the component (unet, vae, text_encoder, text_encoder_2, tokenizer, tokenizer_2, scheduler).</summary>
    bool Has(string component);

    /// <summary>The component's config.json (scheduler: scheduler_config.json).</summary>
    ConfigJson Config(string component);

    ClipTokenizer Tokenizer(string component);

    /// <summary>The component's weights with diffusers names (a folder's files, or a single file seen through its key map).</summary>
    IReadOnlyList<ITensorSource> Weights(string component, string? variant = null);
}
