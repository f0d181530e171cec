using SelfCascade.Imaging;

namespace SelfCascade.Video.Input;

/// <summary>
/// Reads the frames of a video file type the library does not decode itself (the CLI supplies MP4 through ffmpeg).
/// <paramref name="ReadFrames"/> throws <see cref="InvalidDataException"/> or <see cref="IOException"/> for a file it
/// cannot read (the dataset skips and counts it) and must bound its own memory.
/// </summary>
/// <param name="Extensions">Lower-case extensions with the dot, e.g. ".mp4".</param>
public sealed record VideoClipReader(IReadOnlyList<string> Extensions, Func<string, IReadOnlyList<RgbImage>> ReadFrames);
