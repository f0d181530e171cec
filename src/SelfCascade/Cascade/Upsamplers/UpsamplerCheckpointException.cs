namespace SelfCascade.Cascade.Upsamplers;

/// <summary>An upsampler checkpoint that cannot be used: missing file, corrupt data, or made for another UNet.</summary>
public sealed class UpsamplerCheckpointException(string message, Exception? inner = null) : IOException(message, inner);
