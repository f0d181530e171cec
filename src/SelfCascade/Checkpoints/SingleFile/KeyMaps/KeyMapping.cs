namespace SelfCascade.Checkpoints.SingleFile.KeyMaps;

/// <summary>How a tensor of the original layout becomes the diffusers tensor (and back, for writing).</summary>
public enum TensorTransform
{
    /// <summary>The same tensor.</summary>
    Identity,
    /// <summary>The same elements in another shape: the VAE mid attention's 1x1 convs [C, C, 1, 1] are linears [C, C].</summary>
    Reshape,
    /// <summary>A 2-D transpose: OpenCLIP's <c>text_projection</c> is applied as <c>x @ P</c>, a Linear as <c>x @ W^T</c>.</summary>
    Transpose,
    /// <summary>One of <see cref="KeyMapping.Parts"/> equal slices along dim 0: OpenCLIP's fused <c>in_proj_weight/bias</c> = [q; k; v].</summary>
    FusedPart,
}

/// <summary>One diffusers tensor (<see cref="Target"/>) and where it lives in an original-layout file.</summary>
public sealed record KeyMapping(string Target, string Source, TensorTransform Transform = TensorTransform.Identity, int Part = 0, int Parts = 1);

/// <summary>A component's rename rule, diffusers state-dict name -> original key (without the component prefix).</summary>
public interface IOriginalKeyRule
{
    /// <summary>The original key for a diffusers name, or null when the original layout has no such tensor.</summary>
    KeyMapping? Map(string diffusersName);

    /// <summary>Original keys (without prefix) that real files hold and diffusers drops (e.g. SD 2.x's 24th OpenCLIP layer).</summary>
    bool IsIgnorable(string originalKey);
}
