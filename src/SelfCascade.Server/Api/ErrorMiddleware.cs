using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SelfCascade.Server.Jobs;

namespace SelfCascade.Server.Api;

/// <summary>
/// Turns every failure into a JSON error <c>{"error": "...", "status": N}</c>: malformed bodies and parameters 400,
/// bodies over the limit 413, unknown models 404, full queue 429 with Retry-After, shutting down 503. Anything else is
/// a 500 with the message (a bug; logged), and the server keeps serving.
/// </summary>
public sealed class ErrorMiddleware(RequestDelegate next, ILogger<ErrorMiddleware> log)
{
    public async Task InvokeAsync(HttpContext ctx)
    {
        try
        {
            await next(ctx);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            var (status, message) = Classify(e);
            if (status >= 500) log.LogError(e, "request {Path} failed", ctx.Request.Path);
            await WriteAsync(ctx, status, message, (e as QueueFullException)?.RetryAfterSeconds);
        }
    }

    public static (int Status, string Message) Classify(Exception e) => e switch
    {
        BadHttpRequestException b => (b.StatusCode, b.InnerException is JsonException j ? $"{b.Message} {j.Message}" : b.Message),
        JobRequestException r => (r.StatusCode, r.Message),
        QueueFullException q => (StatusCodes.Status429TooManyRequests, q.Message),
        ServerStoppingException s => (StatusCodes.Status503ServiceUnavailable, s.Message),
        JsonException j => (StatusCodes.Status400BadRequest, "malformed JSON: " + j.Message),
        FormatException f => (StatusCodes.Status400BadRequest, f.Message),
        InvalidDataException d => (StatusCodes.Status400BadRequest, d.Message),
        _ => (StatusCodes.Status500InternalServerError, "internal error: " + e.Message),
    };

    public static Task WriteAsync(HttpContext ctx, int status, string message, int? retryAfterSeconds = null)
    {
        ctx.Response.Clear();
        ctx.Response.StatusCode = status;
        if (retryAfterSeconds is int r) ctx.Response.Headers.RetryAfter = r.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return ctx.Response.WriteAsJsonAsync(new ApiError(message, status));
    }

    /// <summary>For UseStatusCodePages: a bodyless 4xx/5xx (unknown route, wrong method) gets the JSON error too.</summary>
    public static Task WriteEmptyStatusAsync(StatusCodeContext c)
    {
        var status = c.HttpContext.Response.StatusCode;
        var message = status switch
        {
            404 => $"no such endpoint: {c.HttpContext.Request.Method} {c.HttpContext.Request.Path}",
            405 => $"method {c.HttpContext.Request.Method} not allowed on {c.HttpContext.Request.Path}",
            401 => "unauthorized",
            _ => $"HTTP {status}",
        };
        return c.HttpContext.Response.WriteAsJsonAsync(new ApiError(message, status));
    }
}

/// <summary>The JSON error body of every 4xx/5xx answer.</summary>
public sealed record ApiError(
    [property: System.Text.Json.Serialization.JsonPropertyName("error")] string Error,
    [property: System.Text.Json.Serialization.JsonPropertyName("status")] int Status);
