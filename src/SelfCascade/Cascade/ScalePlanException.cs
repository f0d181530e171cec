namespace SelfCascade.Cascade;

/// <summary>A self-cascade plan that cannot be made; the message says why and, where possible, what would work.</summary>
public sealed class ScalePlanException(string message) : ArgumentException(message);
