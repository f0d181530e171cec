namespace SelfCascade.Server.Jobs;

/// <summary>The queue is full (HTTP 429 with Retry-After).</summary>
public sealed class QueueFullException(int capacity, int retryAfterSeconds)
    : Exception($"the queue is full ({capacity} jobs waiting); retry later")
{
    public int RetryAfterSeconds { get; } = retryAfterSeconds;
}

/// <summary>A request the server cannot run as given (HTTP 400, or 404 for an unknown model): the message says why.</summary>
public sealed class JobRequestException(string message, int statusCode = 400) : Exception(message)
{
    public int StatusCode { get; } = statusCode;
}

/// <summary>The server is shutting down and takes no new jobs (HTTP 503).</summary>
public sealed class ServerStoppingException() : Exception("the server is shutting down");
