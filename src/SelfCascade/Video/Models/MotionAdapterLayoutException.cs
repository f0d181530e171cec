namespace SelfCascade.Video.Models;

/// <summary>A motion adapter whose files or shape do not fit: every problem in one message.</summary>
public sealed class MotionAdapterLayoutException(string message) : IOException(message);
